"""Predict with a trained classifier: `python predict.py ckpt=PATH input=PATH output=FILE.csv [plot=true]`.

`input` is a shard folder, a CODE-test HDF5 or a folder of ECG records (converted on the fly); see
conf/predict.yaml. The same as `ecglit-predict`.
"""

from ecglit.cli import predict

if __name__ == "__main__":
    predict("predict.py")
