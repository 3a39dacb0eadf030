"""A fast stateful fuzz harness for Ballast: hypothesis drives anvil through raw JSON-RPC.

- `rpc`: the JSON-RPC client and node operations (calls, transactions, snapshots, time);
- `abi`: encoders and decoders built from the compiled ABIs;
- `protocol`: every call the harness makes and the state it reads, in one place;
- `predict`: what the independent model (tests/model.py) says each action must do;
- `invariants`: the checks, one function each;
- `machine`: the rules, the profiles and the run report.
"""
