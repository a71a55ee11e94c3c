"""The command line: every command in one place, each a thin layer over the library.

* ``main``      ``ptoie``: extract, sparql, sql, view
* ``batch``     ``ptoie-batch``: a corpus -> the knowledge graph on Ray workers
* ``kg``        ``ptoie-kg``: the graph outputs from Parquet triples
* ``evaluate``  ``ptoie-eval``: the PUD-100 gate and benchmark scores
* ``train``     ``ptoie-train``: prepare, train, export
* ``options``   the flags of the extractor, made from its configuration classes
* ``graph_options``  the graph-output flags of ``ptoie-batch`` and ``ptoie-kg``
* ``common``    what they all share: the help layout, the exit-status table, the one-line error
"""
