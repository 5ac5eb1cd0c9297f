"""Data: shard readers and writers, DataModules, the synthetic generator, importers of real records."""
