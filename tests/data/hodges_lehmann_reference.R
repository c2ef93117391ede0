# Reference values for tests/test_hodges_lehmann.py, computed with R 4.2.2 (Debian bookworm
# r-base-core):   Rscript tests/data/hodges_lehmann_reference.R > tests/data/hodges_lehmann_reference.out
# Every case prints its data ("a", "b": paired, the estimate is of b - a as in
# wilcox.test(b, a, paired = TRUE); "x", "y": unpaired, the estimate is of x - y) and one "res"
# line per confidence level and digits.rank: estimate, interval, R's conf.level attribute and
# whether R used the exact or the normal-approximation branch. The exact branch runs without
# ties or zeros and with fewer than 50 values; otherwise the interval comes from uniroot.
options(digits = 17)
fmt <- function(v) paste(sprintf("%.17g", v), collapse = " ")
run <- function(name, a, b, paired) {
  cat("case", name, if (paired) "paired" else "unpaired", "\n")
  cat(if (paired) "a" else "x", fmt(a), "\n")
  cat(if (paired) "b" else "y", fmt(b), "\n")
  for (digits in c(Inf, 7)) for (level in c(0.95, 0.9, 0.975, 1 - 0.1 / 3)) {
    w <- suppressWarnings(if (paired)
      wilcox.test(b, a, paired = TRUE, conf.int = TRUE, conf.level = level, digits.rank = digits)
    else wilcox.test(a, b, conf.int = TRUE, conf.level = level, digits.rank = digits))
    method <- if (grepl("exact", w$method)) "exact" else "asymptotic"
    cat("res", fmt(level), if (is.finite(digits)) digits else "Inf", fmt(unname(w$estimate)),
        fmt(w$conf.int), fmt(attr(w$conf.int, "conf.level")), method, fmt(w$p.value), "\n")
  }
}
# signif(x, digits) (the rounding behind digits.rank) on values of every magnitude
set.seed(2)
v <- c(runif(40) * 10^sample(-12:12, 40, TRUE) * sample(c(-1, 1), 40, TRUE),
       0.9993 - 0.9991, 0.9995 - 0.9993, 0.12345675, 2.5, 0.5, 1.5e-300, 1e-320, 3e300)
for (digits in c(1, 3, 7, 15)) cat("signif", digits, fmt(v), "\n", fmt(signif(v, digits)), "\n")
# --- paired
# Hollander & Wolfe (1999) Example 3.1 (R's ?wilcox.test): n = 9, no ties -> exact
run("hw", c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30),
    c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29), TRUE)
# Dice-like values with 4 decimals: differences equal in decimal differ in binary, so the
# exact branch runs with digits.rank = Inf and the normal branch with digits.rank = 7
run("decimal", c(0.9991, 0.9993, 0.8123, 0.7001, 0.6502, 0.9102, 0.8804, 0.7707, 0.6605, 0.9309,
                 0.5511, 0.8412),
    c(0.9993, 0.9995, 0.8001, 0.6902, 0.6707, 0.8999, 0.8700, 0.7504, 0.6390, 0.9100, 0.5301,
      0.8170), TRUE)
# zeros and ties (3 decimals) -> normal approximation
run("ties", c(0.812, 0.745, 0.901, 0.633, 0.702, 0.855, 0.790, 0.688, 0.721, 0.810, 0.777,
              0.640, 0.699, 0.930, 0.615, 0.742),
    c(0.800, 0.745, 0.880, 0.610, 0.702, 0.842, 0.770, 0.690, 0.700, 0.797, 0.760, 0.640,
      0.680, 0.917, 0.600, 0.730), TRUE)
# n = 60 without ties -> normal approximation
i <- 1:60
run("large", round(0.7 + 0.1 * sin(i), 9), round(0.68 + 0.1 * sin(i) + 0.02 * cos(3 * i), 9),
    TRUE)
# n = 4 -> exact, the requested level is out of reach (R reports the achieved level)
run("tiny", c(0.90, 0.85, 0.70, 0.95), c(0.80, 0.82, 0.71, 0.91), TRUE)
# --- unpaired
# R's ?wilcox.test example (Hollander & Wolfe 1973, p. 69): no ties -> exact
run("hw2", c(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46),
    c(1.15, 0.88, 0.90, 0.74, 1.21), FALSE)
# Brunner & Munzel (2000) pain scores: ties -> normal approximation
run("pain", c(1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 1, 1), c(3, 3, 4, 3, 1, 2, 3, 1, 1, 5, 4),
    FALSE)
# values equal in decimal after a subtraction: ties only with digits.rank = 7
run("decimal2", c(0.9993 - 0.9991, 0.31, 0.27, 0.52, 0.44, 0.18, 0.61),
    c(0.9995 - 0.9993, 0.12, 0.05, 0.33, 0.29, 0.08), FALSE)
# n = 55 and 30, no ties -> normal approximation
run("large2", round(sin(1:55) * 10 + 1:55 / 7, 6), round(cos(1:30) * 10 + 3, 6), FALSE)
# 2 vs 3 values -> exact, the requested level is out of reach
run("tiny2", c(0.91, 0.84), c(0.70, 0.75, 0.66), FALSE)
