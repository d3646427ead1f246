// A module-loading hook for the tests: the browser's modules in app/web/static are plain `.js`
// files with `import`/`export` (a browser needs nothing more), but Node reads a `.js` file
// with no "type" in a package.json as CommonJS. This tells Node they are ES modules, so the
// tests load the very files the pages load, unchanged.
const STATIC = new URL("../../app/web/static/", import.meta.url).href;

export async function load(url, context, nextLoad) {
  if (url.startsWith(STATIC) && url.endsWith(".js")) {
    return nextLoad(url, { ...context, format: "module" });
  }
  return nextLoad(url, context);
}
