// Typesets every formula of a JSON array read from standard input with KaTeX in strict mode.
// Prints a JSON array with one entry per formula: null when it typesets, else KaTeX's error message.
// The KaTeX package is found through NODE_PATH (.ci/run installs it under .ci/node/node_modules).
"use strict";
const katex = require("katex");

// KaTeX stops after 1000 macro expansions by default (a guard against runaway macros in a
// browser); a long derived formula (He4's diffusion: over a thousand \operatorname) needs more,
// and TeX itself has no such limit.
const MAX_EXPAND = 1000000;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const errors = JSON.parse(input).map((tex) => {
    try {
      katex.renderToString(tex, { throwOnError: true, displayMode: true, strict: "error", maxExpand: MAX_EXPAND });
      return null;
    } catch (error) {
      return String(error.message);
    }
  });
  process.stdout.write(JSON.stringify(errors));
});
