"""Sources: database servers backed up on their own schedule, with their own retention."""
