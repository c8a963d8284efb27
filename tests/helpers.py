"""Small builders for hand-made trees in tests."""

from llmzero.tree import Node, NodeKind, NodeStatus, Tree


def add(tree: Tree, node_id, parent=None, *, kind=None, status=NodeStatus.COMPLETED, val=None,
        checkpoints=(5, 10), resume_step=5, resume_from="parent", debug_of=None, hparams=None):
    if kind is None:
        kind = NodeKind.ROOT if parent is None else NodeKind.EVOLVE
    if resume_from == "parent":
        resume_from = None if kind in (NodeKind.ROOT, NodeKind.SCRATCH) else parent
    node = Node(
        id=node_id, parent=parent, kind=kind, hparams=dict(hparams or {"lora_rank": 8}),
        status=status, best_val=val, best_step=(5 if val is not None else None),
        checkpoints=list(checkpoints) if status != NodeStatus.FAILED else [],
        resume_step=resume_step if resume_from is not None else None, resume_from=resume_from,
        debug_of=debug_of, started_at=1.0,
    )
    return tree.add(node)
