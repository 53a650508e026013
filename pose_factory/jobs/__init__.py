"""Jobs: the clients that run a render job (local worker or RunPod) and the budget that prices it."""
