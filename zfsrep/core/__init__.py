"""Pure domain logic: names, retention, schedules, plans. Standard library only, no I/O."""
