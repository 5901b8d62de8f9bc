# D4RL dataset kinds the protocol builds (docs/protocol.md, common ground).
DATASET_KINDS = ["random", "medium", "expert", "medium-replay", "medium-expert"]
