"""ChemCoTBench (llmzero/tasks/chemcot.py) on a fixture in the dataset's schema, read through the same loader as the hub;
every molecule comparison goes through the real RDKit."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from llmzero.config.hydra_store import register_configs
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
    ('{"choice": "(E) the SN1 route"}', 0.0),  # the evaluator reads the first character: "(" is no letter
    ('{"choice": "E) the SN1 route"}', 1.0),
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


def test_molecules_match_as_the_evaluator_matches_them_without_stereo(task):
    fs = example("reaction", "fs", gt="C/C=C/C(=O)O")
    assert task.reward('{"Major Product": "C/C=C\\\\C(=O)O"}', fs) == 1.0  # E/Z differs: still the same answer
    chiral = example("reaction", "nepp", gt="C[C@H](N)C(=O)O")
    assert task.reward('{"pred_smi": "C[C@@H](N)C(=O)O"}', chiral) == 1.0  # R/S differs
    assert task.reward('{"pred_smi": "CC(N)CC(=O)O"}', chiral) == 0.0  # another molecule


@pytest.mark.parametrize("gt", [["CCO", "CC(=O)O"], "['CCO', 'CC(=O)O']", '["CCO", "CC(=O)O"]', "CCO.CC(=O)O"])
def test_a_list_ground_truth_is_joined_with_a_dot_as_the_evaluator_joins_it(gt):
    from llmzero.tasks.chemcot import _gold
    assert _gold(gt, ("Reactants",)) == "CCO.CC(=O)O"


def test_retro_answers_as_a_list_are_joined_too(task):
    ex = example("reaction", "retro", gt="CCO.CC(=O)O")
    assert task.reward('{"Reactants": ["OC(C)=O", "OCC"]}', ex) == 1.0


def test_an_added_benzene_ring_is_a_ring_of_its_own_not_part_of_a_fused_system(task):
    add = example("mol_edit", "add", source="Cc1ccccc1", added="benzene_ring")
    assert task.reward('{"output": "Cc1ccccc1-c1ccccc1"}', add) == 1.0  # biphenyl: two separate rings
    assert task.reward('{"output": "Cc1ccc2ccccc2c1"}', add) == 0.0  # naphthalene: fused, no new benzene ring


def test_logp_is_tdcs_penalised_logp_recomputed_from_its_terms():
    from rdkit import Chem
    from rdkit.Chem import Crippen
    from llmzero.tasks import chemistry
    for smiles, largest_ring in (("CCCCCO", 0), ("OC1CCCCCCCC1", 9)):
        mol = Chem.MolFromSmiles(smiles)
        sa = chemistry.sascorer.calculateScore(mol)
        by_hand = ((Crippen.MolLogP(mol) - 2.4570953396190123) / 1.434324401111988
                   + (-sa + 3.0525811293166134) / 0.8335207024513095
                   + (-max(0, largest_ring - 6) + 0.0485696876403053) / 0.2860212110245455)
        assert chemistry.penalised_logp(mol) == pytest.approx(by_hand)
    # the ring penalty makes a 9-ring worse than a 6-ring with the same atoms' logP trend
    assert chemistry.penalised_logp(Chem.MolFromSmiles("OC1CCCCCCCC1")) < chemistry.penalised_logp(
        Chem.MolFromSmiles("OC1CCCCC1CCC"))


def test_scaffold_partial_credit_is_the_evaluators_1024_bit_similarity():
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator
    from rdkit.Chem.Scaffolds import MurckoScaffold
    from llmzero.tasks import chemistry
    a, b = "CCOc1ccc(CC2CCNCC2)cc1", "c1ccc(CC2CCCCC2)cc1"
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fps = [gen.GetFingerprint(Chem.MolFromSmiles(MurckoScaffold.MurckoScaffoldSmiles(s))) for s in (a, b)]
    assert chemistry.same_scaffold_or_similarity(a, b) == pytest.approx(DataStructs.TanimotoSimilarity(*fps))


def test_the_benchmarks_own_figures_sit_beside_the_rewards(task):
    # ChemCoTBench scores understanding and editing over the answers it could read, and counts as mean abs error.
    examples = [example("mol_und", "fg_count", gt="3")] * 4 + [example("mol_edit", "delete", source="ClCCCl",
                                                                        removed="halo")] * 2
    completions = ['{"count": 3}', '{"count": 5}', "no JSON at all", '{"count": "three"}',
                   '{"output": "CCCCl"}', "I cannot answer"]
    scores = task.score(completions, examples)
    assert scores["mol_und_fg_count"] == pytest.approx(1 / 4)  # the reward: unreadable answers score 0
    assert scores["mol_und_fg_count_valid"] == pytest.approx(2 / 4)
    assert scores["mol_und_fg_count_parsed"] == pytest.approx(1 / 2)
    assert scores["mol_und_fg_count_mae"] == pytest.approx((0 + 2) / 2)
    assert scores["mol_edit_delete"] == pytest.approx(1 / 2) and scores["mol_edit_delete_parsed"] == 1.0
    assert scores["mol_und"] == pytest.approx(1 / 4)  # family means use the rewards only, not the extras
    assert scores["score"] == pytest.approx((1 / 4 + 1 / 2) / 2)


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
