package kubist.lib.format_test

import data.kubist.lib.format

test_percent_has_three_significant_digits if {
	format.percent(0.2015703567431595) == "20.2%"
	format.percent(0.026) == "2.6%"
	format.percent(0.0945) == "9.45%"
	format.percent(0.1) == "10%"
	format.percent(1) == "100%"
	format.percent(0) == "0%"
	format.percent(0.000123) == "0.012%"
}

test_ms_has_three_significant_digits if {
	format.ms(245.37) == "245ms"
	format.ms(3.6249) == "3.62ms"
	format.ms(12.25) == "12.3ms"
	format.ms(1234.5) == "1235ms"
}
