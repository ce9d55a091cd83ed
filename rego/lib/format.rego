# How figures read where people read them (messages, Events,
# notifications, the history), importable by user policies too as
# data.kubist.lib.format: at most three significant digits, as `kubist get`
# and the dashboard show them. Machine-readable fields keep full precision.
package kubist.lib.format

# percent renders a rate such as 0.2016 as "20.2%".
percent(rate) := sprintf("%v%%", [significant(rate * 100)])

# ms renders a latency in milliseconds such as 245.37 as "245ms".
ms(v) := sprintf("%vms", [significant(v)])

# significant rounds a figure to three significant digits (to a
# thousandth below 1).
significant(x) := round(x) if abs(x) >= 100

significant(x) := round(x * 10) / 10 if {
	abs(x) >= 10
	abs(x) < 100
}

significant(x) := round(x * 100) / 100 if {
	abs(x) >= 1
	abs(x) < 10
}

significant(x) := round(x * 1000) / 1000 if abs(x) < 1
