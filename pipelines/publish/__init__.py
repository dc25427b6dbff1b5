"""Publishing: the dataset folder's layout and versions, shards, card, report and Hub pushes."""
