"""Lightning: a Core Lightning node (socket or CLNRest) and per-kWh settlement.

``ledger`` is the HA-free settlement ledger: what each neighbour is owed, the
idempotent pending → paid/failed records, and start-up reconciliation.
"""
