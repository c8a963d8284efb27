"""ChemCoTBench (paper §4.1, Appendix B.1): molecule understanding, editing, optimisation and reactions.

Hub rows (`OpenMol/ChemCoTBench`, 1,495 rows in split `train`): `id`, `query` (the prompt, with its own answer
format), `gt`, `task` (the family), `subtask` and `meta` (a JSON string: the source molecule, the groups an edit
names, a reference molecule). The benchmark's evaluator reads the text after `</think>`, strips a ```json fence and
takes the value under a key that depends on the subtask; every reward here does the same (answers.json_answer) and
then scores as that evaluator does:

    mol_und   fg_count, ring_count            the integer under `count` equals gt (the reward); the benchmark's
                                              metric is the mean absolute error, reported as <subtask>_mae
              Murcko_scaffold                 1 when the answer's Murcko scaffold is gt's, else the scaffolds'
                                              1024-bit Morgan similarity when they share a substructure
              ring_system_scaffold, equivalence   Yes/No under `output` equals gt
    mol_edit  add, delete, sub                a valid molecule whose count of the named group rose by one (add),
                                              fell by one (delete), or both for the two groups (sub)
    mol_opt   qed, logp, solubility           a valid molecule whose property is higher than the source's
              drd, gsk, jnk                   unscored: their oracles are trained activity models llmzero does not
                                              ship; such rows are set aside, and the loader's note says so
    reaction  fs, retro, nepp, rcr            the same molecules as gt by InChI with stereo dropped, never by
                                              string; a list (retro's reactants) is joined with "." (rcr: the
                                              same text when either side is not SMILES)
              mechsel                         the first character of `choice` equals gt's letter (letters go
                                              past D), as the evaluator reads it

Metrics: one `val/<family>_<subtask>` per subtask (the reward's mean over every row: an answer that cannot be
read scores 0), one `val/<family>` per family (the mean of its subtasks), and `val/score`, the paper's aggregate:
the mean over the understanding, editing and reaction families; mol_opt is reported but left out of it. Beside
them, the figures ChemCoTBench's own tables print, which differ in denominator or measure: for understanding and
editing, `<family>_<subtask>_parsed` (accuracy over the answers that could be read, the benchmark leaving the others
out) and `<family>_<subtask>_valid` (the share that could be read); for the counts, `<…>_mae` (mean absolute error
over the readable answers). `score()` gives them (TRL and the final scoring); under verl each response's reward
comes with the parts they are rebuilt from (`reward_details`), verl averages those per subtask, and `figures` turns
the means into the same numbers. Needs RDKit: `pip install 'llmzero[chem]'`.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .answers import final_part, json_answer
from .base import Example, example_mean, mean_scores
from .benchmark import BenchmarkTask, missing_extra, pack, unpack

FAMILIES = ("mol_und", "mol_edit", "reaction", "mol_opt")
AGGREGATED = ("mol_und", "mol_edit", "reaction")  # mol_opt is reported beside the aggregate, not in it
UNSCORED_OPT = ("drd", "gsk", "jnk")

# (family, subtask) -> (how it is scored, the answer's JSON keys in the benchmark's order of preference)
SCORING: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("mol_und", "fg_count"): ("count", ("count",)),
    ("mol_und", "ring_count"): ("count", ("count",)),
    ("mol_und", "murcko_scaffold"): ("scaffold", ("Output Scaffold", "output")),
    ("mol_und", "ring_system_scaffold"): ("yes_no", ("output",)),
    ("mol_und", "equivalence"): ("yes_no", ("output",)),
    ("mol_edit", "add"): ("edit", ("output",)),
    ("mol_edit", "delete"): ("edit", ("output",)),
    ("mol_edit", "sub"): ("edit", ("output",)),
    ("mol_opt", "qed"): ("optimise", ("Final Target Molecule",)),
    ("mol_opt", "logp"): ("optimise", ("Final Target Molecule",)),
    ("mol_opt", "solubility"): ("optimise", ("Final Target Molecule",)),
    ("reaction", "fs"): ("molecules", ("Major Product",)),
    ("reaction", "retro"): ("molecules", ("Reactants",)),
    ("reaction", "nepp"): ("molecules", ("pred_smi", "Major Product")),
    ("reaction", "rcr"): ("condition", ("SMILES",)),
    ("reaction", "mechsel"): ("choice", ("choice",)),
}
FALLBACK_KEYS = ("output", "answer", "SMILES", "pred_smi")
PARSED_DENOMINATOR = ("mol_und_", "mol_edit_")  # ChemCoTBench scores these over the readable answers only  # answers written under the generic keys still count
_SOURCE_KEYS = ("source", "src", "source_smiles", "input_smiles", "smiles")
_SOURCE_IN_QUERY = re.compile(r"(?:Input|Source|Original) Molecule(?: SMILES)?\s*:\s*([^\s,;]+)|"
                              r"Molecule SMILES\s*:\s*([^\s,;]+)", re.IGNORECASE)


def _norm(name: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def subtask_name(family: str, subtask: str) -> str:
    return f"{_norm(family)}_{_norm(subtask)}"


SUBTASK_METRICS = frozenset(subtask_name(f, s) for f, s in SCORING)


def parse_meta(meta: Any) -> dict[str, Any]:
    if isinstance(meta, dict):
        return meta
    try:
        value = json.loads(meta) if isinstance(meta, str) and meta.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def source_molecule(query: str, meta: dict[str, Any]) -> str:
    for key in _SOURCE_KEYS:
        if isinstance(meta.get(key), str) and meta[key].strip():
            return meta[key].strip()
    match = _SOURCE_IN_QUERY.search(query)
    return (match.group(1) or match.group(2)).rstrip(".") if match else ""


def _answer(completion: str, keys: Sequence[str]) -> Any:
    return _joined(json_answer(final_part(completion), [*keys, *FALLBACK_KEYS]))


def _joined(value: Any) -> Any:
    """A list of molecules as one '.'-joined SMILES, as the evaluator joins reactants; anything else as it is."""
    if isinstance(value, (list, tuple)):
        return ".".join(str(v).strip() for v in value if v is not None)
    return value


def _integer(value: Any) -> int | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _yes_no(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().strip(".").lower() if value is not None else ""
    return text if text in ("yes", "no") else None


def _letter(value: Any) -> str | None:
    """The first character when it is a letter, as the evaluator reads a mechanism choice ("(B)" is no letter)."""
    text = str(value).strip() if value is not None else ""
    return text[0].upper() if text and text[0].isalpha() and text[0].isascii() else None


def _gold(gt: Any, keys: Sequence[str]) -> str:
    """gt itself; when gt is a JSON object (fs rows hold one), its value under the subtask's key; when it is a list
    (retro rows hold the reactants as one, in the hub's files or as the text of a Python or JSON list), its items
    joined with "." as the evaluator joins them."""
    if isinstance(gt, (list, tuple)):
        return str(_joined(gt))
    if isinstance(gt, str) and gt.strip().startswith("{"):
        found = json_answer(gt, [*keys, *FALLBACK_KEYS])
        if found is not None:
            return str(_joined(found))
    if isinstance(gt, str) and gt.strip().startswith("["):
        try:
            items = ast.literal_eval(gt.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            items = None
        if isinstance(items, (list, tuple)):
            return str(_joined(items))
    return "" if gt is None else str(gt)


class ChemCoTTask(BenchmarkTask):
    dataset_id = "OpenMol/ChemCoTBench"
    columns = ("query", "task", "subtask")

    def __init__(self, name: str = "chemcot", **kwargs: Any) -> None:
        if importlib.util.find_spec("rdkit") is None:
            raise missing_extra(name, "rdkit", "chem", "molecule parsing, scaffolds and properties for the rewards")
        super().__init__(name, **kwargs)

    def set_aside(self, row: dict[str, Any]) -> str | None:
        family, sub = _norm(row.get("task")), _norm(row.get("subtask"))
        if family == "mol_opt" and sub in UNSCORED_OPT:
            return ("mol_opt drd/gsk/jnk, unscored: their oracles are trained activity models llmzero does not ship "
                    "(reported as unscored, not as zero)")
        if (family, sub) not in SCORING:
            return f"unknown family/subtask {row.get('task')}/{row.get('subtask')}"
        if SCORING[(family, sub)][0] == "edit":
            meta = parse_meta(row.get("meta"))
            from .chemistry import GROUP_SMARTS

            groups = [meta.get("added_group"), meta.get("removed_group")]
            if any(g and _norm(g) not in GROUP_SMARTS for g in groups):
                return f"mol_edit rows naming a group without a SMARTS pattern here ({', '.join(map(str, groups))})"
        return None

    def to_example(self, row: dict[str, Any]) -> Example:
        family, sub = _norm(row["task"]), _norm(row["subtask"])
        meta = parse_meta(row.get("meta"))
        keys = SCORING[(family, sub)][1]
        query = str(row["query"])
        answer = pack(family=family, subtask=sub, gt=_gold(row.get("gt"), keys), source=source_molecule(query, meta),
                      added=_norm(meta.get("added_group") or ""), removed=_norm(meta.get("removed_group") or ""),
                      reference=str(meta.get("reference") or ""))
        return Example(prompt=query, answer=answer, subtask=subtask_name(family, sub))

    def reward(self, completion: str, example: Example) -> float:
        return judge(completion, example).reward

    def reward_details(self, completion: str, example: Example) -> dict[str, float]:
        return details(judge(completion, example))

    def figures(self, means: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        return figures(means)

    def reference(self, example: Example) -> str:
        rec = unpack(example.answer)
        kind, keys = SCORING.get((rec.get("family", ""), rec.get("subtask", "")), ("", ("output",)))
        value = rec.get("reference") if kind in ("edit", "optimise") else rec.get("gt")
        return json.dumps({keys[0]: value or rec.get("gt", "")})

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
        judged = [judge(c, e) for c, e in zip(completions, examples)]
        scores = mean_scores([j.reward for j in judged], examples)
        out = self.summarise({k: v for k, v in scores.items() if k != "score"}, Counter(e.subtask for e in examples))
        out.update(evaluator_figures(judged, examples))
        return out

    def summarise(self, subscores: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
        """Family means over their subtasks, and the score as the mean over und, edit and rxn (§ChemCoTBench)."""
        subscores = {k: v for k, v in subscores.items() if k in SUBTASK_METRICS}  # not the evaluator's extras
        scores = {"score": example_mean(subscores, counts), **subscores}
        families = {}
        for family in FAMILIES:
            subs = [v for k, v in subscores.items() if k.startswith(family + "_")]
            if subs:
                families[family] = sum(subs) / len(subs)
        aggregated = [families[f] for f in AGGREGATED if f in families]
        if aggregated:  # else (a batch of mol_opt rows only) the mean over examples stands
            scores["score"] = sum(aggregated) / len(aggregated)
        scores.update(families)
        return scores

@dataclass(frozen=True)
class Judgement:
    reward: float
    readable: bool  # an answer was found under the subtask's key, non-empty (and a number, for the counts)
    abs_error: float | None = None  # counts: |answer - gt|


def judge(completion: str, example: Example) -> Judgement:
    """The reward of one response, with what the benchmark's own figures need beside it."""
    from . import chemistry as chem

    rec = unpack(example.answer)
    family, sub, gt = rec.get("family", ""), rec.get("subtask", ""), str(rec.get("gt", ""))
    kind, keys = SCORING.get((family, sub), ("", ()))
    got = _answer(completion, keys)
    if got is None or (isinstance(got, str) and not got.strip()):
        return Judgement(0.0, False)
    if kind == "count":
        value, want = _integer(got), _integer(gt)
        if value is None:
            return Judgement(0.0, False)
        error = float(abs(value - want)) if want is not None else None
        return Judgement(1.0 if value == want else 0.0, True, error)
    if kind == "yes_no":
        value = _yes_no(got)
        return Judgement(1.0 if value is not None and value == _yes_no(gt) else 0.0, True)
    if kind == "choice":
        value = _letter(got)
        return Judgement(1.0 if value is not None and value == _letter(gt) else 0.0, True)
    smiles = str(got).strip()
    if kind == "scaffold":
        return Judgement(chem.same_scaffold_or_similarity(smiles, gt), True)
    if kind == "molecules":
        return Judgement(1.0 if chem.same_molecule(smiles, gt) else 0.0, True)
    if kind == "condition":
        if chem.molecule(smiles) is not None and chem.molecule(gt) is not None:
            return Judgement(1.0 if chem.same_molecule(smiles, gt) else 0.0, True)
        return Judgement(1.0 if " ".join(smiles.lower().split()) == " ".join(gt.lower().split()) else 0.0, True)
    source = str(rec.get("source", ""))
    if kind == "edit":
        done = _edit_done(chem, sub, source, smiles, rec.get("added", ""), rec.get("removed", ""))
        return Judgement(1.0 if done else 0.0, True)
    if kind == "optimise":
        before, after = chem.property_value(source, sub), chem.property_value(smiles, sub)
        return Judgement(1.0 if before is not None and after is not None and after > before else 0.0, True)
    return Judgement(0.0, False)


def details(j: Judgement) -> dict[str, float]:
    """One response's reward with what ChemCoTBench's figures are rebuilt from; the same keys for every response (verl
    averages each key per data source, `val-aux/<split>/<subtask>/<key>/mean@1`)."""
    return {"score": j.reward, "readable": float(j.readable), "abs_error": j.abs_error or 0.0,
            "has_error": float(j.abs_error is not None)}


def figures(means: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """ChemCoTBench's own figures from per-subtask means of `details`: over readable answers for understanding and
    editing (`_parsed` = mean score / readable share, unreadable answers scoring 0; `_valid` the readable share), and
    the counts' mean absolute error over readable answers (`_mae` = mean abs_error / share with an error)."""
    out: dict[str, float] = {}
    for sub, m in sorted(means.items()):
        if not sub.startswith(PARSED_DENOMINATOR) or "readable" not in m:
            continue
        out[f"{sub}_valid"] = m["readable"]
        if m["readable"] > 0:
            out[f"{sub}_parsed"] = m.get("score", 0.0) / m["readable"]
        if m.get("has_error", 0.0) > 0:
            out[f"{sub}_mae"] = m.get("abs_error", 0.0) / m["has_error"]
    return out


def evaluator_figures(judged: Sequence[Judgement], examples: Sequence[Example]) -> dict[str, float]:
    """`figures` of a scored batch (the means taken here; under verl, verl takes them)."""
    by_sub: dict[str, list[dict[str, float]]] = {}
    for j, e in zip(judged, examples):
        by_sub.setdefault(e.subtask, []).append(details(j))
    return figures({sub: {k: sum(d[k] for d in rows) / len(rows) for k in rows[0]} for sub, rows in by_sub.items()})


def _edit_done(chem: Any, sub: str, source: str, edited: str, added: str, removed: str) -> bool:
    """The edit asked for: the named group's count up by one (add), down by one (delete), or both (sub)."""
    if chem.molecule(source) is None or chem.molecule(edited) is None:
        return False

    def change(group: str) -> int | None:
        before, after = chem.count_group(source, group), chem.count_group(edited, group)
        return None if before is None or after is None else after - before

    if sub == "add":
        return bool(added) and change(added) == 1
    if sub == "delete":
        return bool(removed) and change(removed) == -1
    return bool(added and removed) and change(added) == 1 and change(removed) == -1
