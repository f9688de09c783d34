"""The neutral contract and the engine: events in, messages out, the adapter port, the
router and context handlers see, the dispatcher that runs one unit of work, the inbox
runtime and the clock. No platform SDK is imported anywhere under bot/."""
