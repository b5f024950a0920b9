#!/usr/bin/env python3
"""Module-level dependency edges and cycles of a Rust crate (stdlib only).

usage: modcycles.py SRC_DIR [--root MOD] [--tests] [--keep-parent]

  SRC_DIR        the crate's src/ (lib.rs or main.rs is the root)
  --root MOD     analyse the children of module MOD (e.g. `config`) instead
                 of the crate's top-level modules
  --tests        count #[cfg(test)] code too (otherwise listed separately)
  --keep-parent  with --root: let MOD's own mod.rs take part in cycles
                 (children always use the types mod.rs declares, and mod.rs
                 always declares and calls its children)

A path counts when it starts with `crate::`, `super::` or `self::` (resolved
against the module the code is in, inline `mod x { }` included), or, in the
root file itself, with the name of a child module (`load::load(..)`).
Comments and string literals are ignored; `use a::{b, c}` groups are split.
Exit status 1 when a cycle is found.
"""
import os, re, sys
from collections import defaultdict

def strip(text):
    """Blank out comments and string/char literal contents, keep newlines."""
    out, i, n = [], 0, len(text)
    def blank(s): return re.sub(r"[^\n]", " ", s)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i); j = n if j < 0 else j
            out.append(blank(text[i:j])); i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j): depth, j = depth + 1, j + 2
                elif text.startswith("*/", j): depth, j = depth - 1, j + 2
                else: j += 1
            out.append(blank(text[i:j])); i = j
        elif (m := re.compile(r'b?r(#*)"').match(text, i)) and (i == 0 or not (text[i-1].isalnum() or text[i-1] == "_")):
            end = text.find('"' + m.group(1), m.end()); end = n if end < 0 else end + 1 + len(m.group(1))
            out.append(blank(text[i:end])); i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"': j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j+1])); i = j + 1
        elif c == "'" and (m := re.compile(r"'(\\(x..|u\{[^}]*\}|.)|[^\\'])'").match(text, i)):
            out.append(blank(m.group(0))); i = m.end()
        else:
            out.append(c); i += 1
    return "".join(out)

def matching_brace(s, i):
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "{": depth += 1
        elif s[j] == "}":
            depth -= 1
            if depth == 0: return j
    return len(s)

def module_path(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod" or rel == ["lib"] or rel == ["main"]: rel = rel[:-1]
    return rel

def child_modules(src, modpath):
    base = os.path.join(src, *modpath)
    root = os.path.join(src, "lib.rs") if not modpath else (
        base + ".rs" if os.path.exists(base + ".rs") else os.path.join(base, "mod.rs"))
    text = strip(open(root, encoding="utf-8").read())
    return root, set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M))

PATH = re.compile(r"(?<![\w$:])(crate|super|self|[a-z_]\w*)((?:\s*::\s*(?:super|\w+|\*))*)(\s*::\s*\{)?")

def group_heads(body):
    """First path segments of each member of a `{a, b::c, d::{e}}` group."""
    heads, depth, cur = [], 0, ""
    for ch in body + ",":
        if ch == "{": depth += 1
        elif ch == "}": depth -= 1
        if ch == "," and depth == 0:
            seg = re.split(r"\s*::\s*", cur.strip())
            if seg[0]: heads.append([s for s in seg if s and not s.startswith("{")][:2])
            cur = ""
        else: cur += ch
    return heads

def scan(src, path, roots, rootfile):
    """Yield (absolute path segments, line, is_test, snippet)."""
    raw = open(path, encoding="utf-8").read()
    s = strip(raw)
    s = re.sub(r"pub\s*\(\s*in\s+[^)]*\)", lambda m: " " * len(m.group(0)), s)  # visibility, not a use
    lines = raw.splitlines()
    file_mod = module_path(src, path)
    # inline modules and #[cfg(test)] spans
    inline = []  # (start, end, name)
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", s):
        inline.append((m.end() - 1, matching_brace(s, m.end() - 1), m.group(1)))
    tests = []
    for m in re.finditer(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]", s):
        j = m.end()
        semi, brace = s.find(";", j), s.find("{", j)
        semi = len(s) if semi < 0 else semi
        end = matching_brace(s, brace) if 0 <= brace < semi else semi
        tests.append((m.start(), end))
    aliases = {}  # name brought in by `use crate::a::b;` -> its absolute path
    for m in PATH.finditer(s):
        head, rest = m.group(1), m.group(2)
        segs = [x for x in re.split(r"\s*::\s*", rest) if x]
        pos = m.start()
        here = file_mod + [name for a, b, name in inline if a < pos < b]
        is_use = re.search(r"\buse\s+$", s[max(0, pos - 8):pos]) is not None
        if head in aliases and not is_use and (segs or m.group(3)):
            base, head = aliases[head], "abs"        # `metrics::global()` after `use crate::metrics;`
        elif head not in ("crate", "super", "self"):
            if not (path == rootfile and head in roots and (segs or m.group(3))): continue
            segs = [head] + segs; head = "self"
        if not segs and not m.group(3): continue       # pub(crate), bare `self`
        if head == "abs": pass
        elif head == "crate": base = []
        else:
            base = list(here)
            if head == "super": base = base[:-1]
            while segs and segs[0] == "super": base, segs = base[:-1], segs[1:]
        targets = [base + segs]
        if m.group(3):
            body = s[m.end():matching_brace(s, m.end() - 1)]
            targets = [base + segs + h for h in group_heads(body)]
        line = s.count("\n", 0, pos) + 1
        is_test = any(a <= pos <= b for a, b in tests)
        if is_use:
            for t in targets:
                name = t[-1] if t[-1] not in ("self", "*") else (t[-2] if len(t) > 1 else None)
                if name: aliases[name] = [x for x in t if x not in ("self", "*")]
        for t in targets:
            yield [x for x in t if x != "*"], here, line, is_test, lines[line - 1].strip()

def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = set(a for a in argv if a.startswith("--") and a != "--root")
    src = os.path.abspath(args[0])
    root = argv[argv.index("--root") + 1].split("::") if "--root" in argv else []
    if root: args = [a for a in args if a != argv[argv.index("--root") + 1]]
    rootfile, children = child_modules(src, root)
    parent = ("(" + "::".join(root) + ")") if root else "(crate root)"
    def node(segs):
        if segs[:len(root)] != root: return None      # outside the analysed module
        rest = segs[len(root):]
        return rest[0] if rest and rest[0] in children else parent
    edges = defaultdict(list)  # (a, b) -> [(file:line, test, snippet)]
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"): continue
            p = os.path.join(dirpath, f)
            a = node(module_path(src, p) + ["?"]) if module_path(src, p)[:len(root)] == root else None
            if a is None: continue
            for segs, here, line, is_test, snip in scan(src, p, children, rootfile):
                b = node(segs)
                a2 = node(here + ["?"])
                if b is None or a2 is None or a2 == b: continue
                edges[(a2, b)].append((f"{os.path.relpath(p, src)}:{line}", is_test, snip))
    use_tests = "--tests" in flags
    graph = defaultdict(set)
    print("# edges  (A -> B: where; [test] = only in #[cfg(test)] code)")
    for (a, b), where in sorted(edges.items()):
        test_only = all(t for _, t, _ in where)
        print(f"{a} -> {b}{'   [test]' if test_only else ''}")
        for loc, t, snip in sorted(set(where), key=lambda w: (w[0].rsplit(':', 1)[0], int(w[0].rsplit(':', 1)[1]))):
            print(f"    {loc}{' [test]' if t else ''}: {snip[:110]}")
        if (use_tests or not test_only) and (b != parent and a != parent or "--keep-parent" in flags or not root):
            graph[a].add(b)
    # Tarjan's strongly connected components, then every elementary cycle in each
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    def strong(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
        for w in sorted(graph[v]):
            if w not in index: strong(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            sccs.append(sorted(comp))
    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index: strong(v)
    cycles = []
    for comp in sccs:
        if len(comp) < 2: continue
        members = set(comp)
        def walk(start, v, trail):
            for w in sorted(graph[v] & members):
                if w == start: cycles.append(trail + [start])
                elif w > start and w not in trail: walk(start, w, trail + [w])
        for start in comp: walk(start, start, [start])
    kind = "incl. #[cfg(test)] code" if use_tests else "non-test code"
    print(f"\n# cycles ({kind})")
    for comp in sccs:
        if len(comp) > 1: print("strongly connected: " + ", ".join(comp))
    for c in cycles: print("  " + " -> ".join(c))
    if not cycles: print("none")
    return 1 if cycles else 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
