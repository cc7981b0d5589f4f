"""Layer accounting: output sizes as in Keras, parameters add up, MACs and receptive fields."""

import itertools

import keras
import pytest

from pipeline.models.accounting import account_model, conv_output_size, format_account
from pipeline.models.scratch import build_scratch_convnet


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_output_size_matches_keras_conv2d_and_pooling(padding):
    for size, kernel, stride, dilation in itertools.product(
        (7, 8, 15, 32), (1, 2, 3, 5), (1, 2, 3), (1, 2)
    ):
        if padding == "valid" and size < dilation * (kernel - 1) + 1:
            continue
        shape = (1, size, size, 3)
        if stride == 1 or dilation == 1:  # Keras refuses strides > 1 with dilation > 1
            conv = keras.layers.Conv2D(
                4, kernel, strides=stride, padding=padding, dilation_rate=dilation
            )
            expected = conv.compute_output_shape(shape)[1]
            assert conv_output_size(size, kernel, stride, padding, dilation) == expected, (
                size, kernel, stride, dilation)
        pool = keras.layers.MaxPooling2D(kernel, strides=stride, padding=padding)
        assert conv_output_size(size, kernel, stride, padding) == pool.compute_output_shape(
            shape)[1], (size, kernel, stride)


def test_conv_output_size_edge_cases():
    assert conv_output_size(None, 3) is None
    assert conv_output_size(3, 3) == 1
    with pytest.raises(ValueError, match="smaller than the window"):
        conv_output_size(4, 3, dilation=2)  # the window spans 5 pixels


def test_scratch_convnet_parameters_add_up_and_macs_by_hand():
    model = build_scratch_convnet(150, 2)
    account = account_model(model)
    assert account.params == model.count_params() == 3_453_121
    conv1 = account.row("conv1")
    assert conv1.output_shape == (None, 148, 148, 32)
    assert conv1.macs == 3 * 3 * 3 * 32 * 148 * 148
    assert account.row("pool1").macs == 0
    assert account.row("dense").macs == 6272 * 512
    assert account.row("predictions").macs == 512


def test_receptive_field_of_a_small_stack_by_hand():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="a")(inputs)  # 3, jump 1
    x = keras.layers.Conv2D(4, 3, name="b")(x)  # 3 + 2 = 5
    x = keras.layers.MaxPooling2D(2, name="pool")(x)  # 5 + 1 = 6, jump 2
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, name="dilated")(x)  # 6 + 2*2*2 = 14
    x = keras.layers.Conv2D(4, (1, 3), strides=2, name="wide")(x)  # 14 x (14 + 2*2), jump 4
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    account = account_model(keras.Model(inputs, x))
    fields = {row.name: row.field for row in account.layers}
    assert [fields[n].size[0] for n in ("a", "b", "pool", "dilated")] == [3, 5, 6, 14]
    assert fields["pool"].jump == (2, 2)
    assert fields["wide"].size == (14, 18) and fields["wide"].jump == (4, 4)
    assert fields["gap"].whole and str(fields["gap"]) == "all"


def test_vgg16_conv_base_at_224():
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    account = account_model(model)
    assert account.params == model.count_params()
    assert account.macs == pytest.approx(15.3e9, rel=0.01)
    assert str(account.row("block5_conv3").field) == "196"
    assert str(account.row("block5_pool").field) == "212"  # the published value
    assert account.row("block5_pool").field.jump == (32, 32)


def test_mobilenet_v2_depthwise_and_separable_convolutions():
    model = keras.applications.MobileNetV2(
        weights=None, include_top=True, input_shape=(64, 64, 3), alpha=0.35
    )
    account = account_model(model)
    assert account.params == model.count_params()
    assert account.trainable_params < account.params  # batch-norm moving statistics
    depthwise = account.row("expanded_conv_depthwise")
    _, height, width, channels = depthwise.output_shape
    assert depthwise.macs == 3 * 3 * channels * height * width

    inputs = keras.Input((16, 16, 8))
    outputs = keras.layers.SeparableConv2D(12, 3, depth_multiplier=2, name="sep")(inputs)
    separable = account_model(keras.Model(inputs, outputs)).row("sep")
    assert separable.macs == 3 * 3 * 8 * 2 * 14 * 14 + 8 * 2 * 12 * 14 * 14


def test_branches_take_the_largest_field_and_nested_models_are_walked():
    inner_in = keras.Input((16, 16, 4))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 5, padding="same", name="c5")(inner_in),
                        name="inner")
    inputs = keras.Input((16, 16, 4))
    short = keras.layers.Conv2D(4, 1, name="c1")(inputs)
    merged = keras.layers.Add(name="add")([short, inner(inputs)])
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c3")(merged))
    account = account_model(model)
    names = [row.name for row in account.layers]
    assert "inner/c5" in names
    assert account.params == model.count_params()
    assert str(account.row("add").field) == "5"  # max(1, 5)
    assert str(account.row("c3").field) == "7"


def test_table_lists_every_layer_and_the_totals():
    text = format_account(account_model(build_scratch_convnet(150, 2)))
    assert "conv1" in text and "Conv2D" in text and "(148, 148, 32)" in text
    assert "total params: 3,453,121" in text
    assert "multiply-accumulates" in text


def test_summary_command_prints_the_table_or_a_one_line_error():
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.main, ["summary", "scratch", "--image-size", "150"])
    assert result.exit_code == 0, result.output
    assert "total params: 3,453,121" in result.stdout
    result = CliRunner().invoke(cli.main, ["summary", "alexnet"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
