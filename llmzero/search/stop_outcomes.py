"""What happened after each early-stopper decision, where the tree can tell (§3.5: the stopper is judged by it).

A phase let run (CONTINUE) is known once it ends: did its best beat the incumbent it was compared with (both read
on the in-flight curve, as the decision was)? A phase
stopped cannot be watched any further, so its siblings stand in: children of the same parent that ran to the end
show how much a phase of this family still rose after the same share of its steps, and the stopped phase is
credited with the largest such rise. With no such sibling the outcome stays unknown, and says so.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..metrics.stop_evidence import Curve, best_until, late_rise
from ..tree import Node, NodeStatus, Tree


def _continued(node: Node, check: dict[str, Any], curve: Curve) -> dict[str, Any]:
    inc = (check.get("evidence") or {}).get("incumbent_best")
    # the evidence's scores are the in-flight curve's; the phase's final best is read on the same curve
    final = best_until(curve, math.inf)
    final = final if final is not None else node.best_val
    if final is None:
        return {"known": False, "text": "the phase ended without a validation score"}
    ran = max(0, node.steps_done - int(check.get("step", 0)))
    if inc is None:
        return {"known": True, "final_best": final, "beat_incumbent": None,
                "text": f"ran {ran} more steps, ended at best {final:.4g}"}
    beat = final > inc
    return {"known": True, "final_best": final, "beat_incumbent": beat,
            "text": f"ran {ran} more steps, ended at best {final:.4g}: "
                    f"{'beat' if beat else 'did not beat'} the incumbent's {inc:.4g}"}


def _stopped(node: Node, check: dict[str, Any], siblings: list[tuple[Node, Curve]]) -> dict[str, Any]:
    ev = check.get("evidence") or {}
    level, inc, noise = ev.get("level"), ev.get("incumbent_best"), float(ev.get("noise") or 0.0)
    share = int(check.get("step", 0)) / node.max_steps if node.max_steps else 1.0
    rises = [(sib.id, r) for sib, curve in siblings
             if (r := late_rise(curve, share, sib.max_steps, noise)) is not None]
    if level is None or inc is None or not rises:
        return {"known": False, "text": "unknown: no sibling of this phase ran to the end"}
    sib, rise = max(rises, key=lambda p: p[1])
    estimate = level + float(ev.get("trend_gain") or 0.0) + rise
    would = estimate > inc
    return {"known": True, "would_have_beaten": would, "estimated_best": estimate, "siblings": len(rises),
            "text": f"judging by {len(rises)} sibling(s) let run (the largest rise beyond its trend, node {sib}'s, "
                    f"was +{rise:.3g} after the same share of steps), it would have reached about {estimate:.4g}: "
                    f"{'it might have beaten' if would else 'still below'} the incumbent's {inc:.4g}"}


def settle_outcomes(tree: Tree, curve_of: Callable[[Node], Curve]) -> int:
    """Fill in `outcome` of every decision whose outcome can now be told; returns how many changed."""
    changed = 0
    for node in tree:
        if not node.stop_checks or not node.finished:
            continue
        siblings: list[tuple[Node, Curve]] | None = None
        for check in node.stop_checks:
            if check.get("stop"):
                if siblings is None:
                    siblings = [(s, curve_of(s)) for s in (tree.children(node.parent) if node.parent is not None
                                                           else []) if s.id != node.id
                                and s.status == NodeStatus.COMPLETED and not s.stop_reason]
                outcome = _stopped(node, check, siblings)
            else:
                outcome = _continued(node, check, curve_of(node))
            if outcome != check.get("outcome"):
                check["outcome"] = outcome
                changed += 1
    return changed
