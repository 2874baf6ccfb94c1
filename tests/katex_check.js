// Typesets every formula of a JSON array read from standard input with KaTeX in strict mode.
// Prints a JSON array with one entry per formula: null when it typesets, else KaTeX's error message.
// The KaTeX package is found through NODE_PATH (.ci/run installs it under .ci/node/node_modules).
"use strict";
const katex = require("katex");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const errors = JSON.parse(input).map((tex) => {
    try {
      katex.renderToString(tex, { throwOnError: true, displayMode: true, strict: "error" });
      return null;
    } catch (error) {
      return String(error.message);
    }
  });
  process.stdout.write(JSON.stringify(errors));
});
