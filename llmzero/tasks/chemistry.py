"""Molecule checks behind ChemCoTBench's rewards, all through RDKit: a SMILES is never compared as a string.

Two SMILES name the same molecule when RDKit parses both and their standard InChI agree (canonical SMILES would
do for most, InChI also settles tautomers and charge layers the way the benchmark's evaluator does). Functional
groups are counted with SMARTS patterns, one per group name the benchmark's editing questions use. Properties for
the optimisation subtasks come from RDKit's own descriptors (QED, Crippen logP) and the ESOL solubility estimate;
targets whose oracle is a trained activity model (DRD2, GSK3β, JNK3) have none here.

Import this module only where RDKit is installed (`pip install 'llmzero[chem]'`); chemcot.py checks that first.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import Crippen, Descriptors, Lipinski, QED, rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

# A policy writes thousands of broken SMILES during RL; RDKit would print a parse error for each.
RDLogger.DisableLog("rdApp.*")

__all__ = ["GROUP_SMARTS", "PROPERTIES", "count_group", "molecule", "property_value", "same_molecule",
           "same_scaffold_or_similarity", "tanimoto"]

# Functional groups named by ChemCoTBench's editing questions, as SMARTS (Daylight conventions), counted the way
# the benchmark's evaluator counts them (a carboxylic OH is also a hydroxyl), so a reward agrees with its score.
GROUP_SMARTS: dict[str, str] = {
    "benzene": "c1ccccc1",
    "benzene_ring": "c1ccccc1",
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
    mol = molecule(smiles)
    if mol is None:
        return None
    return Chem.MolToInchi(mol) or None


def same_molecule(a: Any, b: Any) -> bool:
    """Whether two SMILES (a '.'-joined set of molecules too) are the same molecules, by InChI."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    ia, ib = _inchi(a.strip()), _inchi(b.strip())
    return ia is not None and ia == ib


_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def tanimoto(a: Any, b: Any) -> float:
    """Tanimoto similarity of the radius-2 Morgan fingerprints; 0 when either is not a molecule."""
    ma, mb = molecule(a), molecule(b)
    if ma is None or mb is None:
        return 0.0
    return float(DataStructs.TanimotoSimilarity(_MORGAN.GetFingerprint(ma), _MORGAN.GetFingerprint(mb)))


def _scaffold(smiles: str) -> str | None:
    mol = molecule(smiles)
    if mol is None:
        return None
    core = MurckoScaffold.GetScaffoldForMol(mol)
    return Chem.MolToSmiles(core) if core is not None else None


def same_scaffold_or_similarity(predicted: Any, reference: Any) -> float:
    """1 when the predicted molecule's Murcko scaffold is the reference's, else the Tanimoto similarity of the two
    scaffolds (partial credit); 0 for a prediction that is not a molecule."""
    if molecule(predicted) is None or molecule(reference) is None:
        return 0.0
    sp, sr = _scaffold(predicted), _scaffold(reference)
    if sp is None or sr is None:
        return 0.0
    if sp == sr:
        return 1.0
    return tanimoto(sp, sr) if sp and sr else 0.0


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


# Higher is better for each; an optimisation succeeds when the property rises above the source molecule's.
PROPERTIES: dict[str, Callable[[Any], float]] = {
    "qed": QED.qed,
    "logp": Crippen.MolLogP,
    "solubility": _esol,
}


def property_value(smiles: Any, name: str) -> float | None:
    mol = molecule(smiles)
    if mol is None or name not in PROPERTIES:
        return None
    return float(PROPERTIES[name](mol))
