"""The write path: from documents to stored chunks to index segments (see `indexer`)."""
