"""ingestd: a feed ingestion daemon that archives entries in two exact text formats."""

__version__ = "0.8.0.dev0"
PROJECT_URL = "https://github.com/ingestd/ingestd"
