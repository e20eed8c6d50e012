#!/usr/bin/env python3
"""The layering check: the task core, the failure types and the groups know no executor.

Two rules, checked on the source files under src/ (comments and doc comments are not code
and are skipped):

1. Files of the task core (src/task/), the failure types (src/failure/) and the groups
   (src/group*) never name an executor, the builder, the executors' handle or the
   executor context: `crate::local`, `crate::pool`, `crate::executor`, `crate::handle`,
   `crate::builder`, `crate::context`, `Builder`, `Handle`, `Executor`, `LocalExecutor`.
2. No import cycle goes through a file of the task core: the graph has an edge from a file
   to every file it names (`crate::a::b`, `super::x`, a re-exported type resolved to the
   file that defines it), and no strongly connected component of more than one file
   contains a file under src/task/.

Prints every violation and exits 1 if there is one; `--graph` prints the file graph.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
LAYERED = ("task/", "failure/", "group")
FORBIDDEN = re.compile(
    r"crate::(local|pool|executor|handle|builder|context)\b"
    r"|\b(Builder|Handle|Executor|LocalExecutor)\b"
)


def rust_files():
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/")


def blank(match):
    """A match replaced by nothing but its newlines, so line numbers stay."""
    return "\n" * match.group(0).count("\n")


def code_lines(rel):
    """The file's lines with comments and the text of string literals removed."""
    text = open(os.path.join(ROOT, rel), encoding="utf-8").read()
    # One pass, left to right, so that a `//` inside a string is not a comment and a `"`
    # inside a comment does not start a string. Character literals (`'"'`) are skipped.
    token = re.compile(r"//[^\n]*|/\*.*?\*/|'(?:\\.|[^'\\\n])'|\"(?:\\.|[^\"\\])*\"", re.S)

    def strip(match):
        found = match.group(0)
        if found.startswith('"'):
            return '""' + blank(match)
        if found.startswith("'"):
            return found
        return blank(match)

    return token.sub(strip, text).split("\n")


def module_file(segments):
    """The file of module path `segments` (['task', 'id']), or None."""
    if not segments:
        return "lib.rs"
    base = "/".join(segments)
    for candidate in (base + ".rs", base + "/mod.rs"):
        if os.path.exists(os.path.join(ROOT, candidate)):
            return candidate
    return None


def module_of(rel):
    """The module path of a file: 'task/harness.rs' -> ['task', 'harness']."""
    if rel == "lib.rs":
        return []
    parts = rel[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def reexports(rel):
    """Names a module file re-exports: {name: module path it comes from}."""
    found = {}
    here = module_of(rel)
    text = "\n".join(code_lines(rel))
    for m in re.finditer(r"pub(?:\([a-z]+\))?\s+use\s+([^;]+);", text, flags=re.S):
        spec = m.group(1).strip()
        prefix, _, group = spec.partition("::{")
        if group:
            names = [n.strip() for n in group.rstrip("}").split(",")]
        else:
            prefix, _, last = spec.rpartition("::")
            names = [last.strip()]
        prefix = re.sub(r"\s+", "", prefix)
        path = prefix.split("::")
        if path and path[0] == "crate":
            path = path[1:]
        elif path and path[0] == "super":
            path = here[:-1] + path[1:]
        elif path and path[0] == "self":
            path = here + path[1:]
        else:
            path = here + path
        for name in names:
            # `a as b` is re-exported as `b`, from `a`.
            original, _, alias = name.partition(" as ")
            if original and original != "self":
                found[(alias or original).strip()] = path + [original.strip()]
    return found


def resolve(path, reexport_cache, depth=0):
    """The file a path names: the longest module prefix that is a file, then, for a
    re-exported item, the file it is re-exported from."""
    for cut in range(len(path), -1, -1):
        target = module_file(path[:cut])
        if target is None:
            continue
        rest = path[cut:]
        if rest and depth < 8:
            table = reexport_cache.setdefault(target, reexports(target))
            if rest[0] in table:
                return resolve(table[rest[0]] + rest[1:], reexport_cache, depth + 1)
            # A module declared inside this file (`mod x;`) has its own file.
            deeper = module_file(path[: cut + 1])
            if deeper and deeper != target:
                return resolve(path, reexport_cache, depth + 1)
        return target
    return None


def references(rel):
    """Every module path a file names, as segment lists from the crate root."""
    here = module_of(rel)
    text = "\n".join(code_lines(rel))
    paths = []
    for m in re.finditer(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)(::\{([^}]*)\})?", text):
        head = m.group(2).strip(":").split("::")
        # `super` in a mod.rs is the parent of its folder; elsewhere, of its file's module.
        base = [] if m.group(1) == "crate" else here[:-1]
        if m.group(4) is not None:
            for item in re.split(r"\s*,\s*", m.group(4)):
                item = item.strip().split(" as ")[0]
                if item and item != "self":
                    paths.append(base + head + item.split("::"))
                elif item == "self":
                    paths.append(base + head)
        else:
            paths.append(base + head)
    return paths


def graph():
    cache = {}
    edges = {}
    for rel in sorted(rust_files()):
        targets = set()
        for path in references(rel):
            target = resolve(path, cache)
            if target and target != rel:
                targets.add(target)
        edges[rel] = targets
    return edges


def strongly_connected(edges):
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    problems = []
    for rel in sorted(rust_files()):
        if not rel.startswith(LAYERED) or rel.endswith("loom_models.rs"):
            continue
        for number, line in enumerate(code_lines(rel), 1):
            m = FORBIDDEN.search(line)
            if m:
                problems.append(f"src/{rel}:{number}: names `{m.group(0)}`: {line.strip()}")
    edges = graph()
    if "--graph" in sys.argv:
        for source in sorted(edges):
            print(f"{source} -> {' '.join(sorted(edges[source]))}")
    for component in strongly_connected(edges):
        if len(component) > 1 and any(f.startswith("task/") for f in component):
            problems.append("import cycle through the task core: " + " -> ".join(component))
    for problem in problems:
        print(problem)
    if problems:
        print(f"layering check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("layering check: the task core, failure types and groups name no executor; "
          "no import cycle through src/task/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
