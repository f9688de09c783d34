"""What leaves the bot later: outbox rows and how each becomes a message, the sender that
claims and sends them, the planner and the scheduler that queue them, and rate limits."""
