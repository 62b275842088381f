"""The mining part: pyasic adapter, fleet coordinator, curtailment planner."""
