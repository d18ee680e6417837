// FerryAgent: the node agent and runtime drivers. Work in progress.
