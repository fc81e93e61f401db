/** The explorer page's stylesheet, inlined (allowed by the CSP nonce). */
export const explorerStyle = `
:root { color-scheme: light dark; font: 14px/1.5 system-ui, sans-serif; }
body { margin: 1rem 2rem; }
header { border-bottom: 1px solid #8884; margin-bottom: .5rem; }
nav a { font-weight: 600; }
.hint { margin: .25rem 0; color: #888; font-size: 12px; }
ul { list-style: none; margin: 0; padding-left: 1.25rem; border-left: 1px dotted #8886; }
main > ul { padding-left: 0; border: 0; }
li { margin: 1px 0; }
summary { cursor: pointer; }
.k { font-family: ui-monospace, monospace; color: inherit; }
.v { font-family: ui-monospace, monospace; }
.string { color: #0a7d32; } .number { color: #1a5fb4; } .boolean { color: #9141ac; } .null { color: #888; }
.meta { color: #888; font-size: 12px; }
button { font: inherit; font-size: 12px; margin-left: .35rem; padding: 0 .4rem; }
button:focus-visible, summary:focus-visible, input:focus-visible, a:focus-visible { outline: 2px solid #1a5fb4; outline-offset: 1px; }
input { font-family: ui-monospace, monospace; font-size: 13px; }
form { display: inline; }
#status { min-height: 1.5em; }
#status.error { color: #c01c28; font-weight: 600; }
.missing { color: #888; }
`;
