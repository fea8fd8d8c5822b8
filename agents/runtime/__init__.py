"""The agents' shared runtime: journal, queues, retries, chain access, metrics."""
