"""The generator's file bookkeeping (derive/generate.py): paths, the registry source, first differences.

Whether the committed files are fresh, and stale after a change: tests/derive/codegen/test_derive_check.py.
"""

from derive.generate import (
    GENERATED_DIR,
    ROOT,
    first_difference,
    fluctuation_module_path,
    generated_paths,
    module_path,
    registry_source,
    tuple_module_path,
)
from derive.model.model import COMMITTED_MODELS, COMMITTED_TUPLE_MODELS, HE3, PAPER
from derive.quantities.increments import fluctuations_supported


def test_first_difference_names_the_line_and_the_text_around_it():
    assert first_difference("a\nb\nc", "a\nB\nc") == "line 2: file has 'b', generated 'B'"
    assert first_difference("a\nb", "a\nb\nc") == "from line 3: file has 2 lines, generated 3"
    assert first_difference("x\n# body-sha256: 1\ny", "x\n# body-sha256: 2\nz", skip=("# body-sha256: ",)).startswith(
        "line 3:"
    )
    long = "x" * 200
    message = first_difference(long + "1" + long, long + "2" + long)
    assert "..." in message and len(message) < 200  # not the 401-character lines


def test_generated_paths_exist_in_the_committed_tree_and_are_unique():
    paths = generated_paths()
    assert len(paths) == len(set(paths))
    assert all(path.parent == ROOT / GENERATED_DIR for path in paths)
    missing = [path for path in paths if not path.exists()]
    assert missing == []
    for model in COMMITTED_MODELS:
        assert module_path(model) in paths
        assert (fluctuation_module_path(model) in paths) == fluctuations_supported(model)
    assert module_path(PAPER).name == "paper.py" and fluctuation_module_path(HE3).name == "he3_fluctuations.py"
    for model in COMMITTED_TUPLE_MODELS:
        assert tuple_module_path(model) in paths


def test_registry_source_lists_every_committed_model_by_its_hash():
    source = registry_source()
    namespace: dict = {}
    exec(compile(source, "registry", "exec"), namespace)  # the generated registry is plain data
    assert set(namespace["COMMITTED"].values()) == {m.name for m in COMMITTED_MODELS + COMMITTED_TUPLE_MODELS}
    assert namespace["COMMITTED"][PAPER.codegen_hash()] == "paper"
    assert sorted(namespace["COMMITTED_TUPLES"].values()) == sorted(m.name + "_tuples" for m in COMMITTED_MODELS)
    assert (ROOT / GENERATED_DIR / "__init__.py").read_text() == source
