"""The result-tree comparison that guards refactors (benchmarks/compare_results.py)."""

from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import compare_results  # noqa: E402


def _tree(root, curves: dict[str, str]):
    for rel, text in curves.items():
        path = root / rel / "curve.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_identical_trees_pass_and_one_changed_byte_fails(tmp_path, capsys):
    curves = {"wmaug/hopper/random/td3/seed0": "step,score\n0,1.0\n", "wmaug/ant/random/td3/seed0": "step,score\n0,2.0\n"}
    a, b = _tree(tmp_path / "a", curves), _tree(tmp_path / "b", curves)
    assert compare_results.main([str(a), str(b)]) == 0
    (b / "wmaug/ant/random/td3/seed0/curve.csv").write_text("step,score\n0,2.1\n")
    assert compare_results.main([str(a), str(b)]) == 1
    assert "different: wmaug/ant/random/td3/seed0/curve.csv" in capsys.readouterr().out


def test_a_cell_missing_on_one_side_fails(tmp_path, capsys):
    a = _tree(tmp_path / "a", {"x/seed0": "1\n", "x/seed1": "2\n"})
    b = _tree(tmp_path / "b", {"x/seed0": "1\n"})
    assert compare_results.main([str(a), str(b)]) == 1
    assert "only_in_a: x/seed1/curve.csv" in capsys.readouterr().out
