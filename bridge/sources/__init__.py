"""Where pages come from: files, followed files, push sources, and the catalog that picks one."""
