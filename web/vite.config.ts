import { defineConfig } from "vite";

// The API serves the build at "/"; during `npm run dev`, API calls go to a running `cartolog up`.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1500 },
  server: {
    proxy: {
      "/v1": process.env.CARTOLOG_API ?? "http://127.0.0.1:8000",
      "/workspace-config.json": process.env.CARTOLOG_API ?? "http://127.0.0.1:8000",
    },
  },
});
