"""Every Orquesta rehearsal spec of the shared conformance corpus must pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from squall.workflow.rehearsal import compare, load_spec, rehearse

REPO = Path(__file__).resolve().parents[3]
CORPUS = Path(
    os.environ.get("SQUALL_CONFORMANCE_DIR") or REPO.parent / "shared" / "conformance" / "orquesta"
)
SPECS = sorted((CORPUS / "specs").glob("*.yaml")) if (CORPUS / "specs").is_dir() else []


def test_corpus_is_present() -> None:
    if not SPECS:
        message = (
            f"Orquesta conformance corpus not found at {CORPUS} "
            "(set SQUALL_CONFORMANCE_DIR; CI has it at ../shared/conformance/orquesta)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert len(SPECS) >= 96


@pytest.mark.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])
def test_rehearsal_spec_passes(spec_path: Path) -> None:
    spec = load_spec(spec_path, CORPUS)
    differences = compare(spec, rehearse(spec))
    assert not differences, "\n".join(differences)
