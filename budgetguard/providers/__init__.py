"""Providers: one package per provider's admin API (``openai``), each knowing nothing of
budgets. The pipeline reads usage and costs through a provider's read client and acts
through its write client; tests inject a transport."""
