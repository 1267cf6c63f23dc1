"""What operators watch and fix: queues, failures, figures, the audit log, doctor."""
