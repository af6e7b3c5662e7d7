return function(o) error('template band_4stem is not written yet', 2) end
