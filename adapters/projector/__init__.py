"""The projector: applies projections to PostGIS with exactly-once tracking.

One Kafka consumer reads `cartolog.events`; for every polled batch, each projection runs
in ONE PostgreSQL transaction that (1) takes the projection's advisory lock and reads its
tracking (topic, partition → next offset), (2) skips records below that offset and events
whose (aggregate id, version) it already applied, (3) writes the rows of all remaining
events, coalesced per key, (4) advances the tracking. A crash anywhere rolls all of it
back, so a restart resumes from the tracking, never from broker-committed offsets. When a
batch starts beyond the tracked offset (another writer moved it, e.g. a rebuild swapped
in), the consumer is sent back to the tracked offset instead of leaving a gap.

Modules, each importable on its own:
- `base`: records, advisory lock keys, connections;
- `copytext`, `rows`: COPY text and the coalesced row writes of a batch;
- `runner`: one projection's batches, its error policy, tracking and status;
- `consumer`: the one function that makes the projector's Kafka consumers;
- `live`: the live loop; `queries`: status and lag; `ddl`: declared tables;
- `rebuild`, `replay`: rebuild by schema swap and the tuned store replay.
Read-your-writes, which the API needs, is `adapters.read_your_writes`.
"""
