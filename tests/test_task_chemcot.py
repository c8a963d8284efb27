"""ChemCoTBench (llmzero/tasks/chemcot.py) on a fixture in the dataset's schema, read through the same loader as the hub;
every molecule comparison goes through the real RDKit."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from llmzero.config.store import register_configs
from llmzero.paths import conf_dir
from llmzero.tasks.base import Example, build_task
from llmzero.tasks.benchmark import pack
from llmzero.tasks.chemcot import ChemCoTTask, source_molecule
from llmzero.tasks.hub import TaskDataError

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "chemcot.jsonl"


@pytest.fixture(scope="module")
def task():
    return ChemCoTTask(data_files=str(FIXTURE), seed=0)


def example(family, subtask, gt="", **fields):
    base = {"source": "", "added": "", "removed": "", "reference": ""}
    return Example("…", pack(family=family, subtask=subtask, gt=gt, **{**base, **fields}), f"{family}_{subtask}")


def test_the_fixture_is_split_and_unscored_rows_are_set_aside_saying_so(task):
    splits = task.splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 22, "val": 2, "test": 2}  # 28 rows, 2 set aside
    assert "2 rows set aside: mol_opt drd/gsk/jnk, unscored" in task.note
    assert not any(ex.subtask in ("mol_opt_drd", "mol_opt_gsk") for split in splits.values() for ex in split)
    assert ChemCoTTask(data_files=str(FIXTURE), seed=0).splits() == splits
    assert "mol_und_murcko_scaffold" in task.subtasks and "reaction_mechsel" in task.subtasks


def test_every_fixture_row_scores_1_for_its_reference_answer(task):
    for split in task.splits().values():
        for ex in split:
            assert task.reward(task.reference(ex), ex) == 1.0, ex


def test_the_prompt_is_the_benchmarks_own_query(task):
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    queries = {r["query"] for r in rows}
    assert all(ex.prompt in queries for split in task.splits().values() for ex in split)


@pytest.mark.parametrize("completion, reward", [
    ('{"Major Product": "CCOC(C)=O"}', 1.0),
    ('```json\n{"Major Product": "O=C(C)OCC"}\n```', 1.0),  # the same molecule written as another SMILES
    ('{"Major Product": "CC(=O)OCC"}', 1.0),
    ('{"Major Product": "CCOC(C)=O)("}', 0.0),  # not a SMILES
    ('{"Major Product": "CCOC(C)=S"}', 0.0),  # another molecule
    ('<think>{"Major Product": "CCOC(C)=O"}</think>{"Major Product": "CCO"}', 0.0),  # an answer in thinking never counts
    ('<think>hmm</think>Result: {"Major Product": "CCOC(C)=O"}', 1.0),
    ('The product is CCOC(C)=O', 0.0),  # no JSON: the evaluator reads none
])
def test_forward_synthesis_compares_molecules_never_strings(task, completion, reward):
    assert task.reward(completion, example("reaction", "fs", gt="CCOC(C)=O")) == reward


def test_retro_compares_the_set_of_reactants(task):
    ex = example("reaction", "retro", gt="CCO.CC(=O)O")
    assert task.reward('{"Reactants": "OC(C)=O.OCC"}', ex) == 1.0
    assert task.reward('{"Reactants": "OCC"}', ex) == 0.0


@pytest.mark.parametrize("completion, reward", [
    ('{"choice": "E"}', 1.0),  # a letter past D
    ('{"choice": "(E) the SN1 route"}', 1.0),
    ('{"choice": "e"}', 1.0),
    ('{"choice": "D"}', 0.0),
    ('{"choice": "Z"}', 0.0),
])
def test_mechanism_selection_reads_the_letter(task, completion, reward):
    assert task.reward(completion, example("reaction", "mechsel", gt="E")) == reward


def test_counts_are_exact_integers(task):
    ex = example("mol_und", "fg_count", gt="3")
    assert [task.reward(c, ex) for c in ('{"count": 3}', '{"count": "3"}', '{"count": 3.0}', '{"count": 4}',
                                         '{"count": "three"}', '{"answer": 3}')] == [1, 1, 1, 0, 0, 1]


def test_murcko_scaffold_is_1_for_the_same_scaffold_else_a_similarity(task):
    ex = example("mol_und", "murcko_scaffold", gt="c1ccc(CC2CCNCC2)cc1")
    assert task.reward('{"Output Scaffold": "C1CNCCC1Cc1ccccc1"}', ex) == 1.0  # same scaffold, other SMILES
    partial = task.reward('{"Output Scaffold": "c1ccc(CC2CCCCC2)cc1"}', ex)  # N swapped for C: similar, not equal
    assert 0.0 < partial < 1.0
    assert task.reward('{"Output Scaffold": "not a molecule"}', ex) == 0.0


def test_yes_no_answers(task):
    ex = example("mol_und", "equivalence", gt="No")
    assert [task.reward(c, ex) for c in ('{"output": "No"}', '{"output": "no."}', '{"output": "Yes"}',
                                         '{"output": "maybe"}')] == [1, 1, 0, 0]


def test_edits_are_judged_by_group_counts_on_a_valid_molecule(task):
    add = example("mol_edit", "add", source="CCc1ccccc1", added="hydroxyl")
    assert task.reward('{"output": "CCc1ccc(O)cc1"}', add) == 1.0
    assert task.reward('{"output": "OCCc1ccccc1"}', add) == 1.0  # any position: the count rose by one
    assert task.reward('{"output": "OCC(O)c1ccccc1"}', add) == 0.0  # two added
    assert task.reward('{"output": "CCc1ccc(O)cc1("}', add) == 0.0  # invalid SMILES
    sub = example("mol_edit", "sub", source="ClCc1ccccc1", added="hydroxyl", removed="halo")
    assert task.reward('{"output": "OCc1ccccc1"}', sub) == 1.0
    assert task.reward('{"output": "OCc1ccc(Cl)cc1"}', sub) == 0.0  # hydroxyl added, halo kept
    delete = example("mol_edit", "delete", source="ClCCCl", removed="halo")
    assert task.reward('{"output": "CCCCl"}', delete) == 1.0 and task.reward('{"output": "CCC"}', delete) == 0.0


def test_optimisation_needs_a_higher_property_than_the_source(task):
    logp = example("mol_opt", "logp", source="OCC(O)CO")
    assert task.reward('{"Final Target Molecule": "CCCCCO"}', logp) == 1.0
    assert task.reward('{"Final Target Molecule": "OCC(O)C(O)CO"}', logp) == 0.0
    assert task.reward('{"Final Target Molecule": "C1CC"}', logp) == 0.0  # unclosed ring: invalid


def test_the_aggregate_is_the_mean_over_understanding_editing_and_reaction_computed_by_hand(task):
    examples = [example("mol_und", "fg_count", gt="2"), example("mol_und", "fg_count", gt="1"),
                example("mol_und", "equivalence", gt="Yes"),
                example("mol_edit", "delete", source="ClCCCl", removed="halo"),
                example("reaction", "fs", gt="CCO"), example("reaction", "mechsel", gt="F"),
                example("mol_opt", "qed", source="CCCCCCCCCCCCCCCC")]
    completions = ['{"count": 2}', '{"count": 5}', '{"output": "Yes"}', '{"output": "CCC"}', '{"Major Product": "OCC"}',
                   '{"choice": "F"}', '{"Final Target Molecule": "CC(=O)Nc1ccc(O)cc1"}']
    scores = task.score(completions, examples)
    # by hand: fg_count 1/2, equivalence 1 -> mol_und (0.5 + 1) / 2 = 0.75; mol_edit delete 0 -> 0;
    # reaction fs 1, mechsel 1 -> 1; mol_opt qed 1 (reported, not aggregated); score = (0.75 + 0 + 1) / 3
    assert scores["score"] == pytest.approx(1.75 / 3)
    assert scores["mol_und"] == pytest.approx(0.75) and scores["mol_edit"] == 0 and scores["reaction"] == 1
    assert scores["mol_opt"] == 1 and scores["mol_opt_qed"] == 1 and scores["mol_und_fg_count"] == 0.5


def test_the_source_molecule_is_read_from_meta_or_the_query():
    assert source_molecule("Input Molecule: CCO, add a hydroxyl", {}) == "CCO"
    assert source_molecule("Source Molecule: c1ccccc1. Raise QED", {}) == "c1ccccc1"
    assert source_molecule("Source Molecule: CCO", {"source": "CCN"}) == "CCN"


def test_without_rdkit_the_task_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rdkit" else real(name, *a))
    with pytest.raises(TaskDataError, match=r"pip install 'llmzero\[chem\]'"):
        ChemCoTTask(data_files=str(FIXTURE))


def test_task_chemcot_composes_with_hydra_and_reads_a_local_copy():
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=["task=chemcot", f"task.data_files={FIXTURE}"])
    assert cfg.task.dataset == "OpenMol/ChemCoTBench"
    built = build_task(OmegaConf.to_container(cfg.task, resolve=True))
    assert isinstance(built, ChemCoTTask) and sum(len(v) for v in built.splits().values()) == 26
