// The dashboard's build: one hashed JS and one CSS file under assets/,
// no source maps (they would double what the binary embeds), nothing
// loaded from anywhere but the daemon itself.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    modulePreload: { polyfill: false },
    target: "es2022",
    assetsInlineLimit: 0,
  },
  test: {
    environment: "node",
    include: ["test/**/*.test.js"],
  },
});
