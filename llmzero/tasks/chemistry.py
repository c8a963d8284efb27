"""Molecule checks behind ChemCoTBench's rewards, all through RDKit: a SMILES is never compared as a string.

Each check follows ChemCoTBench's own evaluator (`baseline_and_eval`), so a reward agrees with the benchmark's score:
- two SMILES name the same molecules when, written as canonical SMILES without stereo (`isomericSmiles=False`),
  their standard InChI agree: an E/Z or R/S difference still counts as the same answer;
- functional groups are counted with its SMARTS patterns (a benzene ring is six aromatic carbons each in one ring,
  so a fused ring system does not count);
- a Murcko scaffold matches when the scaffold SMILES are equal, else it earns the Tanimoto similarity of 1024-bit
  radius-2 Morgan fingerprints of the two scaffolds when they share a common substructure (MCS), else 0;
- optimisation oracles: QED, TDC's penalised logP (Crippen logP less the synthetic-accessibility score and a
  large-ring penalty, each standardised) and the refit ESOL solubility estimate. Targets whose oracle is a trained
  activity model (DRD2, GSK3β, JNK3) have none here.

Import this module only where RDKit is installed (`pip install 'llmzero[chem]'`); chemcot.py checks that first.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

import os
import sys

from rdkit import Chem, DataStructs, RDConfig, RDLogger
from rdkit.Chem import Crippen, Descriptors, Lipinski, QED, rdFMCS, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

# The synthetic-accessibility score (Ertl & Schuffenhausen 2009) ships in RDKit's Contrib folder, not as a module.
sys.path.append(os.path.join(RDConfig.RDContribDir, "SA_Score"))
import sascorer  # noqa: E402

# A policy writes thousands of broken SMILES during RL; RDKit would print a parse error for each.
RDLogger.DisableLog("rdApp.*")

__all__ = ["GROUP_SMARTS", "PROPERTIES", "count_group", "molecule", "penalised_logp", "property_value",
           "same_molecule", "same_scaffold_or_similarity", "tanimoto"]

# Functional groups named by ChemCoTBench's editing questions, as SMARTS (Daylight conventions), counted the way
# the benchmark's evaluator counts them (a carboxylic OH is also a hydroxyl), so a reward agrees with its score.
GROUP_SMARTS: dict[str, str] = {
    "benzene": "[cR1]1[cR1][cR1][cR1][cR1][cR1]1",
    "benzene_ring": "[cR1]1[cR1][cR1][cR1][cR1][cR1]1",
    "hydroxyl": "[OX2H]",
    "aldehyde": "[CX3H1](=O)[#6]",
    "ketone": "[#6][CX3](=O)[#6]",
    "carboxyl": "[CX3](=O)[OX2H1]",
    "ester": "[#6][CX3](=O)[OX2H0][#6]",
    "anhydride": "[CX3](=[OX1])[OX2][CX3](=[OX1])",
    "amine": "[NX3;H2,H1;!$(NC=O)]",
    "amide": "[NX3][CX3](=[OX1])[#6]",
    "nitro": "[$([NX3](=O)=O),$([NX3+](=O)[O-])][!#8]",
    "halo": "[F,Cl,Br,I]",
    "thiol": "[#16X2H]",
    "thioether": "[SX2][CX4]",
    "disulfide": "[#16X2H0][#16X2H0]",
    "sulfoxide": "[$([#16X3]=[OX1]),$([#16X3+][OX1-])]",
    "sulfone": "[$([#16X4](=[OX1])=[OX1]),$([#16X4+2]([OX1-])[OX1-])]",
    "sulfide": "[#16X2H0]",  # less the disulfide sulfurs: see count_group
    "nitrile": "[NX1]#[CX2]",
    "borane": "[BX3]",
}


def molecule(smiles: Any) -> Any | None:
    """The RDKit molecule of a SMILES, or None when it is not one (empty, unparsable, not a string)."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    return Chem.MolFromSmiles(smiles.strip())


@lru_cache(maxsize=65536)
def _inchi(smiles: str) -> str | None:
    """The standard InChI of the molecule with its stereo dropped, as the evaluator compares them."""
    mol = molecule(smiles)
    if mol is None:
        return None
    flat = Chem.MolFromSmiles(Chem.MolToSmiles(mol, isomericSmiles=False, canonical=True))
    return (Chem.MolToInchi(flat) or None) if flat is not None else None


def same_molecule(a: Any, b: Any) -> bool:
    """Whether two SMILES (a '.'-joined set of molecules too) are the same molecules, by InChI, stereo ignored."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    ia, ib = _inchi(a.strip()), _inchi(b.strip())
    return ia is not None and ia == ib


_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
_SCAFFOLD_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
MCS_TIMEOUT_S = 2  # RDKit's default is an hour; a reward must stay bounded


def tanimoto(a: Any, b: Any) -> float:
    """Tanimoto similarity of the radius-2 Morgan fingerprints; 0 when either is not a molecule."""
    ma, mb = molecule(a), molecule(b)
    if ma is None or mb is None:
        return 0.0
    return float(DataStructs.TanimotoSimilarity(_MORGAN.GetFingerprint(ma), _MORGAN.GetFingerprint(mb)))


def _scaffold(smiles: str) -> str | None:
    try:
        return MurckoScaffold.MurckoScaffoldSmiles(smiles.strip())
    except (ValueError, RuntimeError):
        return None


def same_scaffold_or_similarity(predicted: Any, reference: Any) -> float:
    """1 when the two molecules' Murcko scaffold SMILES are equal; else, when the scaffolds share a common
    substructure, the Tanimoto similarity of their 1024-bit Morgan fingerprints (partial credit); else 0."""
    if molecule(predicted) is None or molecule(reference) is None:
        return 0.0
    sp, sr = _scaffold(predicted), _scaffold(reference)
    if sp is None or sr is None:
        return 0.0
    if sp == sr:
        return 1.0
    mp, mr = Chem.MolFromSmiles(sp), Chem.MolFromSmiles(sr)
    if mp is None or mr is None or mp.GetNumAtoms() == 0 or mr.GetNumAtoms() == 0:
        return 0.0
    if rdFMCS.FindMCS([mp, mr], timeout=MCS_TIMEOUT_S).numAtoms == 0:
        return 0.0
    fp = _SCAFFOLD_MORGAN.GetFingerprint
    return float(DataStructs.TanimotoSimilarity(fp(mp), fp(mr)))


@lru_cache(maxsize=None)
def _pattern(group: str) -> Any:
    return Chem.MolFromSmarts(GROUP_SMARTS[group])


def count_group(smiles: Any, group: str) -> int | None:
    """How many times the named group occurs in the molecule; None for an unknown group or a non-molecule."""
    mol = molecule(smiles)
    if mol is None or group not in GROUP_SMARTS:
        return None
    found = len(mol.GetSubstructMatches(_pattern(group)))
    if group == "sulfide":  # a sulfide is a divalent sulfur outside an S-S bond
        found -= len(mol.GetSubstructMatches(_pattern("disulfide")))
    return found


def _esol(mol: Any) -> float:
    """ESOL log-solubility estimate (Delaney 2004, J. Chem. Inf. Comput. Sci. 44:1000), with the coefficients of
    the refit on Delaney's data published by P. Walters, the estimate ChemCoTBench's evaluator uses."""
    aromatic = sum(1 for atom in mol.GetAtoms() if atom.GetIsAromatic()) / max(1, mol.GetNumAtoms())
    return (0.26121066137801696 - 0.0066138847738667125 * Descriptors.MolWt(mol)
            - 0.7416739523408995 * Crippen.MolLogP(mol) + 0.003451545565957996 * Lipinski.NumRotatableBonds(mol)
            - 0.42624840441316975 * aromatic)


# TDC's penalised logP standardises each term by its mean and spread over ZINC250k (the JT-VAE constants).
_LOGP_MEAN, _LOGP_STD = 2.4570953396190123, 1.434324401111988
_SA_MEAN, _SA_STD = -3.0525811293166134, 0.8335207024513095
_CYCLE_MEAN, _CYCLE_STD = -0.0485696876403053, 0.2860212110245455


def penalised_logp(mol: Any) -> float:
    """logP - SA - (largest ring size above 6), each standardised: the `logp` oracle of TDC, which ChemCoTBench's
    optimisation evaluator calls. Rings are RDKit's smallest set of smallest rings."""
    rings = [len(r) for r in mol.GetRingInfo().AtomRings()]
    cycle = -max(0, max(rings, default=0) - 6)
    return ((Crippen.MolLogP(mol) - _LOGP_MEAN) / _LOGP_STD + (-sascorer.calculateScore(mol) - _SA_MEAN) / _SA_STD
            + (cycle - _CYCLE_MEAN) / _CYCLE_STD)


# Higher is better for each; an optimisation succeeds when the property rises above the source molecule's.
PROPERTIES: dict[str, Callable[[Any], float]] = {
    "qed": QED.qed,
    "logp": penalised_logp,
    "solubility": _esol,
}


def property_value(smiles: Any, name: str) -> float | None:
    mol = molecule(smiles)
    if mol is None or name not in PROPERTIES:
        return None
    return float(PROPERTIES[name](mol))
