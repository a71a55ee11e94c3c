"""The command line: every command in one place, each a thin layer over the library.

* ``main``      ``ptoie``: extract, sparql, sql, view
* ``batch``     ``ptoie-batch``: a corpus -> the knowledge graph on Ray workers
* ``kg``        ``ptoie-kg``: the graph outputs from Parquet triples
* ``evaluate``  ``ptoie-eval``: the PUD-100 gate and benchmark scores
* ``train``     ``ptoie-train``: prepare, train, export
* ``common``    what they share: the help layout and exit-status table, ``--format``,
  ``--threads``, reading ``-`` (standard input)
"""
