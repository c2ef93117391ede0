# Reference values for tests/test_unpaired.py, computed with R 4.2.2 (Debian bookworm r-base-core):
#   Rscript tests/data/unpaired_reference.R > tests/data/unpaired_reference.out
# wilcox.test is base R (stats); Brunner-Munzel is written out as in lawstat::brunner.munzel
# (lawstat is not packaged for Debian); Cliff's delta is mean(sign(outer(x, y, "-"))).
options(digits = 17)
bm <- function(x, y) {  # Brunner-Munzel (2000), as lawstat::brunner.munzel.test (t approximation)
  n1 <- length(x); n2 <- length(y)
  r1 <- rank(x); r2 <- rank(y); r <- rank(c(x, y))
  m1 <- mean(r[1:n1]); m2 <- mean(r[n1 + 1:n2])
  v1 <- sum((r[1:n1] - r1 - m1 + (n1 + 1) / 2)^2) / (n1 - 1)
  v2 <- sum((r[n1 + 1:n2] - r2 - m2 + (n2 + 1) / 2)^2) / (n2 - 1)
  st <- n1 * n2 * (m2 - m1) / (n1 + n2) / sqrt(n1 * v1 + n2 * v2)
  df <- (n1 * v1 + n2 * v2)^2 / ((n1 * v1)^2 / (n1 - 1) + (n2 * v2)^2 / (n2 - 1))
  p <- 2 * min(pt(abs(st), df), 1 - pt(abs(st), df))
  c(statistic = st, df = df, p = p, p_hat = (m2 - (n2 + 1) / 2) / n1)
}
cliff <- function(x, y) mean(sign(outer(x, y, "-")))
show <- function(name, x, y) {
  w <- suppressWarnings(wilcox.test(x, y, paired = FALSE))
  cat(name, ": W =", format(unname(w$statistic), digits = 17), " p =", format(w$p.value, digits = 17),
      " method =", w$method, "\n")
  b <- bm(x, y)
  cat(name, ": BM stat =", format(b[["statistic"]], digits = 17), " df =", format(b[["df"]], digits = 17),
      " p =", format(b[["p"]], digits = 17), " p_hat =", format(b[["p_hat"]], digits = 17), "\n")
  cat(name, ": cliff =", format(cliff(x, y), digits = 17), "\n")
}
# 1. R's ?wilcox.test example (Hollander & Wolfe 1973, p. 69): no ties, small -> exact
x1 <- c(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46)
y1 <- c(1.15, 0.88, 0.90, 0.74, 1.21)
show("hw", x1, y1)
# 2. Brunner & Munzel (2000) pain scores (lawstat / scipy example): ties -> normal approx
x2 <- c(1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1)
y2 <- c(3, 3, 4, 3, 1, 2, 3, 1, 1, 5, 4)
show("pain", x2, y2)
# 3. Dice-like values, no ties, n = 12 vs 9 -> exact
x3 <- c(0.912, 0.874, 0.801, 0.955, 0.689, 0.843, 0.777, 0.902, 0.861, 0.735, 0.928, 0.819)
y3 <- c(0.702, 0.815, 0.634, 0.771, 0.688, 0.590, 0.744, 0.806, 0.723)
show("dice", x3, y3)
# 4. n >= 50 in one group, no ties -> normal approximation with continuity correction
x4 <- round(sin(1:55) * 10 + 1:55 / 7, 6)
y4 <- round(cos(1:30) * 10 + 3, 6)
show("large", x4, y4)
# 5. studentised permutation Brunner-Munzel (Neubert & Brunner 2007), written out: the bm()
# statistic over every split of the pooled values into groups of the two sizes (combn); a
# split without rank variance counts as |T| = Inf unless its p_hat is 1/2 (then T = 0);
# p = share of splits with |T| >= |T observed|
bmT <- function(x, y) {
  n1 <- length(x); n2 <- length(y)
  r1 <- rank(x); r2 <- rank(y); r <- rank(c(x, y))
  m1 <- mean(r[1:n1]); m2 <- mean(r[n1 + 1:n2])
  v1 <- sum((r[1:n1] - r1 - m1 + (n1 + 1) / 2)^2) / (n1 - 1)
  v2 <- sum((r[n1 + 1:n2] - r2 - m2 + (n2 + 1) / 2)^2) / (n2 - 1)
  p_hat <- (m2 - (n2 + 1) / 2) / n1
  se <- sqrt(n1 * v1 + n2 * v2) / (n1 * n2)
  if (se > 0) (p_hat - 0.5) / se else if (p_hat == 0.5) 0 else sign(p_hat - 0.5) * Inf
}
perm_bm <- function(name, x, y) {
  pooled <- c(x, y); n1 <- length(x)
  t_all <- apply(combn(length(pooled), n1), 2, function(i) bmT(pooled[i], pooled[-i]))
  t_obs <- bmT(x, y)
  cat(name, ": perm T =", format(t_obs, digits = 17), " p =",
      format(mean(abs(t_all) >= abs(t_obs) * (1 - 1e-12)), digits = 17), " splits =",
      length(t_all), "\n")
}
perm_bm("small", c(0.61, 0.72, 0.55, 0.80, 0.47), c(0.41, 0.52, 0.38, 0.66, 0.35, 0.49, 0.30))
perm_bm("separated", c(0.9, 0.8, 0.85, 0.95), c(0.3, 0.4, 0.2, 0.5, 0.1))
perm_bm("ties", c(1, 2, 2, 3, 3, 3), c(2, 3, 4, 4, 5, 5, 5))
# 7 vs 12 values: 50388 splits, the exact p that the Monte Carlo version must approach
perm_bm("mc", x3[1:7], c(y3 + 0.1, x3[9:11] - 0.05))
