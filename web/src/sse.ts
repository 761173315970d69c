// Server-Sent Events over fetch: EventSource cannot send an Authorization header.
// Reconnects with Last-Event-ID after the server closes the stream (it has a maximum duration).

export interface ServerEvent { id: string; event: string; data: string }

export interface Stream { close(): void }

export function openEventStream(url: string, headers: () => Record<string, string>,
                                onEvent: (event: ServerEvent) => void,
                                onState: (state: "open" | "retrying" | "closed", detail?: string) => void): Stream {
  let lastId = "";
  let closed = false;
  let controller = new AbortController();

  async function connect(): Promise<void> {
    while (!closed) {
      controller = new AbortController();
      try {
        const extra: Record<string, string> = { ...headers(), Accept: "text/event-stream" };
        if (lastId) extra["Last-Event-ID"] = lastId;
        const response = await fetch(url, { headers: extra, signal: controller.signal });
        if (!response.ok || !response.body) {
          onState("retrying", `notifications answered ${response.status}`);
          if ([401, 403, 404].includes(response.status)) { closed = true; break; }
        } else {
          onState("open");
          await readEvents(response.body, (event) => {
            if (event.id) lastId = event.id;
            onEvent(event);
          });
        }
      } catch (error) {
        if (closed) break;
        onState("retrying", String(error));
      }
      if (!closed) await sleep(1000);
    }
    onState("closed");
  }

  void connect();
  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}

async function readEvents(body: ReadableStream<Uint8Array>, emit: (event: ServerEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = parseBlock(block);
      if (event) emit(event);
    }
  }
}

/** One event block of the text/event-stream format (comments and retry lines ignored). */
export function parseBlock(block: string): ServerEvent | null {
  const event: ServerEvent = { id: "", event: "message", data: "" };
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") data.push(value);
    else if (field === "id") event.id = value;
    else if (field === "event") event.event = value;
  }
  if (!data.length) return null;
  event.data = data.join("\n");
  return event;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
