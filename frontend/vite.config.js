import { defineConfig } from "vite";

// Output goes straight into the Python package so `quantedge dashboard` needs no npm at run time.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../src/quantedge/dashboard/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
