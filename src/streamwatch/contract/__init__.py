"""The wire contract: the events services publish and streamwatch emits, their limits, encode and decode.

The pydantic models in :mod:`~streamwatch.contract.events` are the contract;
``schemas/`` is generated from them. :mod:`~streamwatch.contract.encode` writes
events without running pydantic on the hot path, and
:mod:`~streamwatch.contract.decode` reads raw bytes in C (msgspec) and words
every rejection as a :class:`~streamwatch.errors.ContractError`.

May import: :mod:`streamwatch.errors`. Pure: no I/O, no threads, no clock.
"""
