"""Tools for people who run or integrate a deployment (never deployed):

python -m ops.dead_letters list|replay   what waits in the dead letters, replayed safely
python -m ops.sign                       sign a request the way WEBHOOK_AUTH expects
"""
