"""The store: the engine, the tables, migrations, bulk SQL. Everything above it reads and writes
through these.
"""
