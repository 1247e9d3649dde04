"""Uninformed Students (Bergmann et al., CVPR 2020) in PyTorch: teacher, students, statistics, scoring.

Formulas: ../../../shared/METHODS.md section 1. The networks and their dense extraction come from
patchnet.py (PatchNetwork, .dense). Everything works on dense maps: one forward pass of a whole
28 x 28 image gives a descriptor at every pixel, so training samples pixel positions from the
dense maps instead of cropping p x p patches one by one.

Teacher: trained without a pretrained network (the paper's self-supervised route): a triplet loss
on descriptors (anchor = descriptor at a pixel, positive = the same content shifted by a pixel or
two, with a brightness change and Gaussian noise, negative = a descriptor from another image) plus
the compactness loss (mean |off-diagonal| of the descriptor correlation matrix over the batch).
Triplet distances are squared L2 divided by the squared spread of the batch's descriptors (margin 1),
so the loss does not depend on the output scale (a fresh p = 65 net's descriptors are tiny and nearly
constant; with raw distances its triplet loss sat at the margin for the first hundred steps).
Teacher statistics use the first 500 training images (every pixel); training runs on CPU in minutes
(measured numbers: train_students.py's docstring).

Students: M per scale, same architecture, random init, regress the normalized teacher descriptors
y = (T - mu_T) / sigma_T with MSE on dense maps.

Scoring at each pixel: e = ||mbar - y||^2, v = mean_i ||m_i||^2 - ||mbar||^2,
score = (e - e_mean)/e_std + (v - v_mean)/v_std (validation statistics), multi-scale map = the
average of the per-scale scores, image score = the map's max.
"""
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from patchnet import SLOPE, PatchNetwork

DEFAULT_SCALES = (17, 33, 65)


def to_input(images):
    """uint8 [n, 28, 28] -> float32 [n, 1, 28, 28] with pixel / 255 (the exported input_scale)."""
    return torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).unsqueeze(1)


def _batches(x, batch):
    for i in range(0, x.shape[0], batch):
        yield x[i:i + batch]


def _shift(x, dy, dx):
    """Zero-filled shift: out[r + dy, c + dx] = x[r, c]."""
    h, w = x.shape[-2:]
    p = F.pad(x, (2, 2, 2, 2))
    return p[..., 2 - dy:2 - dy + h, 2 - dx:2 - dx + w]


def _gather(d, b, r, c):
    """Descriptors d[b, :, r, c] for index vectors b, r, c -> [n, D]."""
    return d[b, :, r, c]


def triplet_compactness_loss(teacher, x, n_per_image=32, margin=1.0, compactness=1.0, gen=None):
    """The paper's self-supervised teacher loss on one batch x [B, 1, H, W] (B >= 2)."""
    bsz, _, h, w = x.shape
    dev = x.device
    # Positive: each image shifted by (dy, dx) in [-2, 2]^2, brightness changed, noise added.
    shifts = torch.randint(-2, 3, (bsz, 2), generator=gen)
    gain = 1.0 + (torch.rand(bsz, 1, 1, 1, generator=gen) - 0.5) * 0.4
    offset = (torch.rand(bsz, 1, 1, 1, generator=gen) - 0.5) * 0.2
    xp = torch.stack([_shift(x[i], int(shifts[i, 0]), int(shifts[i, 1])) for i in range(bsz)])
    xp = xp * gain + offset + 0.02 * torch.randn(xp.shape, generator=gen)
    da = teacher.dense(x)
    dp = teacher.dense(xp)
    # Anchor pixel (r, c) lies at (r + dy, c + dx) in the positive; sample inside both images.
    b = torch.arange(bsz).repeat_interleave(n_per_image)
    dy, dx = shifts[b, 0], shifts[b, 1]
    r = (dy.clamp(max=0).neg() + (torch.rand(b.shape, generator=gen) * (h - dy.abs())).long())
    c = (dx.clamp(max=0).neg() + (torch.rand(b.shape, generator=gen) * (w - dx.abs())).long())
    a = _gather(da, b, r, c)
    p = _gather(dp, b, r + dy, c + dx)
    # Negative: a random pixel of another image of the batch.
    bn = (b + 1 + torch.randint(0, bsz - 1, b.shape, generator=gen)) % bsz
    n = _gather(da, bn, torch.randint(0, h, b.shape, generator=gen), torch.randint(0, w, b.shape, generator=gen))
    # Distances in units of the descriptors' spread, so the margin means the same at any output scale
    # (a freshly initialized p = 65 net outputs nearly constant, tiny descriptors).
    both = torch.cat([a, p, n])
    spread = (both - both.mean(0, keepdim=True)).pow(2).sum(1).mean().sqrt() + 1e-8
    a, p, n = a / spread, p / spread, n / spread
    d_ap = (a - p).pow(2).sum(1)
    d_an = torch.minimum((a - n).pow(2).sum(1), (p - n).pow(2).sum(1))  # with anchor swap
    triplet = F.relu(margin + d_ap - d_an).mean()
    z = a - a.mean(0, keepdim=True)
    z = z / (z.norm(dim=0, keepdim=True) + 1e-8)
    corr = z.t() @ z
    off = corr - torch.diag(torch.diagonal(corr))
    dim = corr.shape[0]
    compact = off.abs().sum() / (dim * (dim - 1))
    return triplet + compactness * compact, float(triplet), float(compact)


def train_teacher(p, x, width, dim, steps, batch=16, lr=1e-3, seed=0, log=print):
    """Self-supervised teacher on images x [n, 1, H, W]."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    teacher = PatchNetwork(p, x.shape[1], width, dim)
    opt = torch.optim.Adam(teacher.parameters(), lr=lr)
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        loss, tl, cl = triplet_compactness_loss(teacher, x[idx], gen=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"  teacher p={p} step {step}: triplet {tl:.4f} compactness {cl:.4f}")
    return teacher.eval()


@torch.no_grad()
def teacher_stats(teacher, x, batch=64):
    """mu_T, sigma_T [D] per channel over every pixel of every image of x (float64 sums)."""
    s = s2 = 0.0
    count = 0
    for xb in _batches(x, batch):
        d = teacher.dense(xb).double()
        s = s + d.sum((0, 2, 3))
        s2 = s2 + d.pow(2).sum((0, 2, 3))
        count += d.shape[0] * d.shape[2] * d.shape[3]
    mu = s / count
    sigma = (s2 / count - mu * mu).clamp(min=0).sqrt()
    return mu.float(), sigma.float().clamp(min=1e-6)


def normalized_teacher(teacher, mu, sigma, x):
    return (teacher.dense(x) - mu.view(1, -1, 1, 1)) / sigma.view(1, -1, 1, 1)


def train_students(teacher, mu, sigma, x, m, steps, batch=16, lr=1e-3, seed=0, log=print):
    """M students regressing the normalized teacher descriptors (MSE on dense maps), one shared batch per step."""
    torch.manual_seed(seed + 100)
    gen = torch.Generator().manual_seed(seed + 101)
    students = [PatchNetwork(teacher.p, x.shape[1], _width(teacher), mu.numel()) for _ in range(m)]
    opts = [torch.optim.Adam(s.parameters(), lr=lr) for s in students]
    for step in range(steps):
        xb = x[torch.randint(0, x.shape[0], (batch,), generator=gen)]
        with torch.no_grad():
            y = normalized_teacher(teacher, mu, sigma, xb)
        losses = []
        for s, opt in zip(students, opts):
            loss = (s.dense(xb) - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        if step % 50 == 0 or step == steps - 1:
            log(f"  students p={teacher.p} step {step}: mse " + " ".join(f"{l:.4f}" for l in losses))
    return [s.eval() for s in students]


def _width(net):
    return net.layers[0].out_channels


@torch.no_grad()
def error_variance(teacher, mu, sigma, students, x):
    """e, v maps [B, H, W] for one scale."""
    y = normalized_teacher(teacher, mu, sigma, x)
    ms = torch.stack([s.dense(x) for s in students])  # [M, B, D, H, W]
    mbar = ms.mean(0)
    e = (mbar - y).pow(2).sum(1)
    v = ms.pow(2).sum(2).mean(0) - mbar.pow(2).sum(1)
    return e, v


class Scale:
    """One scale p: teacher, its statistics, M students and the validation statistics."""

    def __init__(self, teacher, mu, sigma, students, stats=None):
        self.teacher, self.mu, self.sigma, self.students = teacher, mu, sigma, students
        self.stats = stats  # dict e_mean, e_std, v_mean, v_std

    @torch.no_grad()
    def fit_validation(self, x, batch=64):
        es, vs = [], []
        for xb in _batches(x, batch):
            e, v = error_variance(self.teacher, self.mu, self.sigma, self.students, xb)
            es.append(e.double().flatten())
            vs.append(v.double().flatten())
        e, v = torch.cat(es), torch.cat(vs)
        self.stats = {"e_mean": float(e.mean()), "e_std": float(e.std()),
                      "v_mean": float(v.mean()), "v_std": float(v.std())}
        return self.stats

    @torch.no_grad()
    def maps(self, x):
        """e, v and the normalized score map, each [B, H, W]."""
        e, v = error_variance(self.teacher, self.mu, self.sigma, self.students, x)
        st = self.stats
        return e, v, (e - st["e_mean"]) / st["e_std"] + (v - st["v_mean"]) / st["v_std"]


class UninformedStudents:
    """Scales p -> Scale, plus the config written to the exported file."""

    def __init__(self, scales, config):
        self.scales = scales
        self.config = config

    @torch.no_grad()
    def score(self, x, batch=64):
        """x [B, 1, H, W] (pixel / 255) -> dict: per scale {e, v, score} maps [B, H, W],
        'map' (the average of the per-scale scores) [B, H, W], 'image' (its max) [B]."""
        out = {p: {"e": [], "v": [], "score": []} for p in self.scales}
        for xb in _batches(x, batch):
            for p, sc in self.scales.items():
                e, v, s = sc.maps(xb)
                out[p]["e"].append(e)
                out[p]["v"].append(v)
                out[p]["score"].append(s)
        for p in self.scales:
            out[p] = {k: torch.cat(v) for k, v in out[p].items()}
        out["map"] = torch.stack([out[p]["score"] for p in self.scales]).mean(0)
        out["image"] = out["map"].flatten(1).max(1).values
        return out

    def tensors(self):
        """name -> float32 numpy array, as exported (docs/FORMATS.md, uninformed_students)."""
        t = {}
        for p, sc in self.scales.items():
            for name, w in sc.teacher.state_dict().items():
                t[f"teacher.p{p}.{name}"] = w.numpy()
            t[f"teacher.p{p}.mu"] = sc.mu.numpy()
            t[f"teacher.p{p}.sigma"] = sc.sigma.numpy()
            for i, s in enumerate(sc.students):
                for name, w in s.state_dict().items():
                    t[f"students.{i}.p{p}.{name}"] = w.numpy()
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in t.items()}

    def metadata(self, provenance=None):
        cfg = dict(self.config)
        cfg["validation"] = {str(p): sc.stats for p, sc in self.scales.items()}
        cfg.setdefault("image_score", {"min": None, "max": None, "threshold": None})
        meta = {"format": "gpuanomaly", "architecture": "uninformed_students", "config": json.dumps(cfg)}
        if provenance:
            meta["provenance"] = json.dumps(provenance)
        return meta

    @staticmethod
    def from_file(path):
        import safetensors_io
        tensors, meta = safetensors_io.load(path)
        if meta.get("architecture") != "uninformed_students":
            raise ValueError(f"{path}: architecture {meta.get('architecture')!r} is not uninformed_students")
        cfg = json.loads(meta["config"])
        ternary_layers = json.loads(meta.get("ternary", "{}"))
        for name, mode in ternary_layers.items():  # T2 weights arrive as int8 values: back to gamma * W_t
            import ternary
            tensors[name] = ternary.dequantize(torch.from_numpy(tensors[name]),
                                               torch.from_numpy(tensors.pop(name + "_scale"))).numpy()
        scales = {}
        for p in cfg["scales"]:
            def net(prefix):
                n = PatchNetwork(p, cfg["in_channels"], cfg["width"], cfg["descriptor_dim"])
                n.load_state_dict({k[len(prefix):]: torch.from_numpy(v) for k, v in tensors.items()
                                   if k.startswith(prefix) and k not in (prefix + "mu", prefix + "sigma")})
                for i, layer in enumerate(n.layers):
                    mode = ternary_layers.get(f"{prefix}layers.{i}.weight")
                    if mode is not None:
                        layer.quant = {"a8": mode.get("activations") == "a8"}
                return n.eval()
            teacher = net(f"teacher.p{p}.")
            students = [net(f"students.{i}.p{p}.") for i in range(cfg["students"])]
            scales[p] = Scale(teacher, torch.from_numpy(tensors[f"teacher.p{p}.mu"]),
                              torch.from_numpy(tensors[f"teacher.p{p}.sigma"]), students,
                              cfg["validation"][str(p)])
        return UninformedStudents(scales, cfg)


def train(x_train, x_val, scales=DEFAULT_SCALES, width=32, dim=128, m=3, teacher_steps=200, student_steps=200,
          batch=16, lr=1e-3, seed=0, stats_images=500, normal_class=None, log=print):
    """Trains every scale; returns (UninformedStudents, provenance dict)."""
    t0 = time.time()
    timing = {}
    out = {}
    for p in scales:
        ts = time.time()
        teacher = train_teacher(p, x_train, width, dim, teacher_steps, batch, lr, seed, log)
        mu, sigma = teacher_stats(teacher, x_train[:stats_images])
        students = train_students(teacher, mu, sigma, x_train, m, student_steps, batch, lr, seed, log)
        sc = Scale(teacher, mu, sigma, students)
        log(f"  p={p} validation {sc.fit_validation(x_val)}")
        timing[str(p)] = round(time.time() - ts, 1)
        out[p] = sc
    config = {"scales": list(scales), "in_channels": int(x_train.shape[1]), "width": width, "descriptor_dim": dim,
              "students": m, "leaky_relu_slope": SLOPE, "input_size": [int(x_train.shape[2]), int(x_train.shape[3])],
              "input_scale": "pixel / 255", "normal_class": normal_class}
    provenance = {"teacher_steps": teacher_steps, "student_steps": student_steps, "batch": batch, "lr": lr,
                  "seed": seed, "train_images": int(x_train.shape[0]), "validation_images": int(x_val.shape[0]),
                  "teacher_stats_images": min(stats_images, int(x_train.shape[0])),
                  "seconds": round(time.time() - t0, 1), "seconds_per_scale": timing,
                  "threads": torch.get_num_threads(), "torch_version": torch.__version__}
    return UninformedStudents(out, config), provenance


def auroc(scores, positive):
    """Rank AUROC (ties averaged): probability that a positive scores above a negative."""
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_s = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    npos, nneg = positive.sum(), (~positive).sum()
    return (ranks[positive].sum() - npos * (npos + 1) / 2) / (npos * nneg)
