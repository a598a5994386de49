// Run a MicroPython script on the official WebAssembly port (a 32-bit VM: 31-bit small
// ints, ticks wrapping at 2**30, heap_lock, no native/viper emitter, double floats).
//
//   node run_wasm.mjs --module PATH/micropython.mjs --heap BYTES [--tree DIR]...
//                     [--stdin FILE] SCRIPT.py
//
// Every .py, .mpy and .json file under each --tree DIR is copied into the VM's in-memory filesystem at the
// same absolute path, so `sys.path.insert(0, DIR)` in the script works as on the unix port.
// A line "#@@toplevel" splits SCRIPT into chunks run in turn (see below: live heap).
// --stdin FILE is copied to /stdin.bin (the port has no blocking stdin). What the script
// writes to stdout (sys.stdout and sys.stdout.buffer) is written to this process's stdout
// as bytes; an uncaught exception prints its traceback on stderr and exits with status 1.
import fs from "fs";
import path from "path";
import { pathToFileURL } from "url";

const argv = process.argv.slice(2);
let modulePath = null;
let heap = 1024 * 1024;
const trees = [];
let stdinFile = null;
let script = null;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--module") modulePath = argv[++i];
  else if (a === "--heap") heap = parseInt(argv[++i], 10);
  else if (a === "--tree") trees.push(argv[++i]);
  else if (a === "--stdin") stdinFile = argv[++i];
  else script = a;
}
if (!modulePath || !script) {
  process.stderr.write("usage: run_wasm.mjs --module micropython.mjs --heap N [--tree DIR] SCRIPT\n");
  process.exit(2);
}
const { loadMicroPython } = await import(pathToFileURL(path.resolve(modulePath)).href);

const out = [];
let outLen = 0;
function flushOut() {
  if (outLen) {
    const buf = Buffer.alloc(outLen);
    let o = 0;
    for (const b of out) { buf[o++] = b; }
    out.length = 0;
    outLen = 0;
    fs.writeSync(1, buf);
  }
}
const mp = await loadMicroPython({
  heapsize: heap,
  linebuffer: false,
  stdout: (d) => { for (const b of d) out.push(b); outLen += d.length; if (outLen > 65536) flushOut(); },
  stderr: (d) => { flushOut(); fs.writeSync(2, Buffer.from(d)); },
});
const FS = mp.FS;

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter((x) => x)) {
    cur += "/" + part;
    try { FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copyTree(dir) {
  const abs = path.resolve(dir);
  mkdirs(abs);
  for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
    const p = path.join(abs, ent.name);
    if (ent.isDirectory()) {
      if (ent.name !== "__pycache__" && !ent.name.startsWith(".")) copyTree(p);
    } else if (ent.name.endsWith(".py") || ent.name.endsWith(".mpy") || ent.name.endsWith(".json")) {
      FS.writeFile(p, fs.readFileSync(p));
    }
  }
}
for (const t of trees) copyTree(t);
if (stdinFile) FS.writeFile("/stdin.bin", fs.readFileSync(stdinFile));

let status = 0;
try {
  // A line "#@@toplevel" splits the script into chunks run one after the other in the
  // same globals. This port's gc.collect() only marks a collection as pending; it runs at
  // the top level, between two chunks (no C stack to scan there). So to measure a live
  // heap: gc.collect(), then #@@toplevel, then gc.mem_alloc(). On the unix port the
  // marker is a comment.
  for (const chunk of fs.readFileSync(script, "utf8").split(/^#@@toplevel[ \t]*$/m)) {
    mp.runPython(chunk);
  }
} catch (e) {
  flushOut();
  fs.writeSync(2, String(e && e.message ? e.message : e) + "\n");
  status = 1;
}
flushOut();
process.exit(status);
