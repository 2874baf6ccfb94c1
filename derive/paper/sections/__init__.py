"""The sections of ``docs/equations.md`` beyond the overlap ODEs, one module per section.

Each module defines ``section() -> (canonical, markdown)`` and only writes the
mathematics of a module below it (:mod:`derive.paper`, :mod:`derive.quantities`)
as Markdown; :mod:`derive.paper.documents` assembles the document.
"""
