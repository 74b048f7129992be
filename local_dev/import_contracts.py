"""An import-linter contract type of our own: which modules may import a subpackage of an external package.

import-linter's `forbidden` contract can forbid only a whole external package (`azure`), and the
app needs `azure.functions`, `azure.core` and `azure.identity` in many places while only its storage
layer may talk to `azure.data.tables`. grimp keeps the text of every import line, so this contract
reads which `azure` imports name the subpackage.

    [[tool.importlinter.contracts]]
    type = "only_importers"
    external = "azure.data.tables"
    importers = ["shared.storage"]
"""

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class OnlyImportersContract(Contract):
    type_name = "only_importers"

    external = fields.StringField()
    importers = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        external = str(self.external)
        root = external.split(".")[0]
        allowed = tuple(str(name) for name in self.importers)
        found = []
        for importer in sorted(graph.find_modules_that_directly_import(root)):
            if any(importer == name or importer.startswith(name + ".") for name in allowed):
                continue
            for detail in graph.get_import_details(importer=importer, imported=root):
                line = detail["line_contents"]
                if f"{external} " in line + " " or f"{external}." in line:
                    found.append({"importer": importer, "line_number": detail["line_number"], "line": line})
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["found"]:
            output.print_error(f"{item['importer']}:{item['line_number']} imports {self.external}: {item['line']}")
            output.new_line()


class NoCyclesContract(Contract):
    """No module of `packages` imports itself through others (strongly connected components of the
    module graph, Tarjan's algorithm). import-linter's own acyclic contract compares whole sibling
    packages, so a package whose data module is imported by storage while its engine imports
    storage would count as a circle; this one looks at modules."""

    type_name = "no_cycles"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        roots = tuple(str(name) for name in self.packages)
        inside = sorted(m for m in graph.modules if any(m == r or m.startswith(r + ".") for r in roots))
        edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in inside) for m in inside}
        cycles = [sorted(component) for component in _components(inside, edges) if len(component) > 1]
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("These modules import each other in a circle: " + ", ".join(cycle))
            output.new_line()


def _components(nodes: list, edges: dict) -> list:
    """Strongly connected components (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found
