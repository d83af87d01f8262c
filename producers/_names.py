"""Curated pools for the synthetic population: names with their readings, municipalities.

Faker's ja_JP provider carries about 50 surnames and 50 given names with readings; these
lists add common ones so that names repeat about as often as they do in Japan, and include
the characters that have well-known variant forms (高, 崎, 辺, 沢, 浜, 島, ...) so that
agency views can exercise variant-kanji folding. Each reading is the usual one for that
spelling; one spelling, one reading.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "EXTRA_FAMILY_NAMES",
    "EXTRA_FEMALE_NAMES",
    "EXTRA_MALE_NAMES",
    "MUNICIPALITIES",
    "VARIANT_FORMS",
]

_FAMILY: Final = """
高木 タカギ 高田 タカダ 高野 タカノ 高山 タカヤマ 高村 タカムラ 高松 タカマツ 宮崎 ミヤザキ
岡崎 オカザキ 川崎 カワサキ 野崎 ノザキ 柴崎 シバザキ 島崎 シマザキ 岩崎 イワサキ 田辺 タナベ
渡部 ワタナベ 辺見 ヘンミ 沢田 サワダ 中沢 ナカザワ 小沢 オザワ 大沢 オオサワ 長沢 ナガサワ
滝沢 タキザワ 黒沢 クロサワ 藤沢 フジサワ 沢井 サワイ 浜田 ハマダ 浜口 ハマグチ 浜野 ハマノ
国分 コクブ 国井 クニイ 広瀬 ヒロセ 広田 ヒロタ 広野 ヒロノ 桜井 サクライ 桜田 サクラダ
島田 シマダ 小島 コジマ 島村 シマムラ 大島 オオシマ 福島 フクシマ 富田 トミタ 富永 トミナガ
富岡 トミオカ 真田 サナダ 真鍋 マナベ 徳永 トクナガ 徳田 トクダ 徳山 トクヤマ 瀬戸 セト
成瀬 ナルセ 瀬川 セガワ 長瀬 ナガセ 一ノ瀬 イチノセ 大蔵 オオクラ 蔵本 クラモト 上田 ウエダ
原田 ハラダ 小野 オノ 竹内 タケウチ 金子 カネコ 和田 ワダ 中山 ナカヤマ 石田 イシダ
森田 モリタ 柴田 シバタ 酒井 サカイ 工藤 クドウ 横山 ヨコヤマ 宮本 ミヤモト 内田 ウチダ
安藤 アンドウ 谷口 タニグチ 大野 オオノ 丸山 マルヤマ 今井 イマイ 河野 コウノ 藤本 フジモト
村田 ムラタ 武田 タケダ 上野 ウエノ 杉山 スギヤマ 増田 マスダ 平野 ヒラノ 大塚 オオツカ
千葉 チバ 久保 クボ 松井 マツイ 野口 ノグチ 松尾 マツオ 菅原 スガワラ 木下 キノシタ
野村 ノムラ 新井 アライ 佐野 サノ 杉本 スギモト 大西 オオニシ 古川 フルカワ 市川 イチカワ
小松 コマツ 水野 ミズノ 菊地 キクチ 吉川 ヨシカワ 山中 ヤマナカ 中西 ナカニシ 西田 ニシダ
山内 ヤマウチ 飯田 イイダ 服部 ハットリ 吉村 ヨシムラ 川口 カワグチ 松岡 マツオカ 田村 タムラ
北村 キタムラ 大橋 オオハシ 堀 ホリ 荒木 アラキ 大久保 オオクボ 中野 ナカノ 安田 ヤスダ
石原 イシハラ 小山 コヤマ 関 セキ 本田 ホンダ 宮田 ミヤタ 桑原 クワハラ 松下 マツシタ
須藤 スドウ 望月 モチヅキ 星野 ホシノ 片山 カタヤマ 西川 ニシカワ 平田 ヒラタ 川上 カワカミ
永井 ナガイ 岩田 イワタ 松浦 マツウラ 辻 ツジ 早川 ハヤカワ 秋山 アキヤマ 黒田 クロダ
吉岡 ヨシオカ 土屋 ツチヤ 中田 ナカタ 河合 カワイ 大谷 オオタニ 榎本 エノモト 熊谷 クマガイ
岩本 イワモト 小池 コイケ 松村 マツムラ 浅野 アサノ 樋口 ヒグチ 大川 オオカワ 浅井 アサイ
北川 キタガワ 宮下 ミヤシタ 飯塚 イイヅカ 栗原 クリハラ 内藤 ナイトウ 横田 ヨコタ 野田 ノダ
吉野 ヨシノ 岡 オカ 堤 ツツミ 長尾 ナガオ 梅田 ウメダ 三上 ミカミ 宮川 ミヤガワ 小田 オダ
根本 ネモト 西山 ニシヤマ 馬場 ババ 菅野 カンノ 桑田 クワタ 関口 セキグチ 荒川 アラカワ
"""

_MALE: Final = """
大輔 ダイスケ 健太 ケンタ 拓也 タクヤ 翔 ショウ 大樹 ダイキ 達也 タツヤ 竜也 タツヤ 誠 マコト
隆 タカシ 剛 ツヨシ 健 ケン 悠斗 ユウト 蓮 レン 湊 ミナト 陽翔 ハルト 大和 ヤマト 颯太 ソウタ
悠真 ユウマ 樹 イツキ 陸 リク 蒼 アオイ 結翔 ユイト 朝陽 アサヒ 一郎 イチロウ 二郎 ジロウ
三郎 サブロウ 清 キヨシ 実 ミノル 勝 マサル 茂 シゲル 進 ススム 博 ヒロシ 正 タダシ 明 アキラ
豊 ユタカ 勉 ツトム 武 タケシ 徹 トオル 聡 サトシ 浩二 コウジ 真一 シンイチ 誠一 セイイチ
和夫 カズオ 正男 マサオ 幸男 ユキオ 光 ヒカル 隼人 ハヤト 駿 シュン 航 ワタル 亮 リョウ
雄大 ユウダイ 康介 コウスケ 圭 ケイ 恵一 ケイイチ 徳治 トクジ 広志 ヒロシ 富夫 トミオ
国男 クニオ 浩之 ヒロユキ 哲也 テツヤ 信也 シンヤ 俊介 シュンスケ 祐介 ユウスケ 大地 ダイチ
海斗 カイト 颯 ハヤテ 仁 ジン 正樹 マサキ 直也 ナオヤ 克也 カツヤ 秀一 シュウイチ 陽介 ヨウスケ
優斗 ユウト 智之 トモユキ 崇 タカシ 昌平 ショウヘイ 恭平 キョウヘイ 龍之介 リュウノスケ
"""

_FEMALE: Final = """
恵子 ケイコ 洋子 ヨウコ 幸子 サチコ 和子 カズコ 節子 セツコ 京子 キョウコ 美智子 ミチコ
久美子 クミコ 由美子 ユミコ 真由美 マユミ 恵美 エミ 真理子 マリコ 智子 トモコ 裕子 ユウコ
典子 ノリコ 直美 ナオミ 由美 ユミ 美穂 ミホ 愛 アイ 彩 アヤ 麻衣 マイ 沙織 サオリ 美咲 ミサキ
陽菜 ヒナ 結菜 ユイナ 葵 アオイ 凛 リン 芽依 メイ 紬 ツムギ 咲良 サクラ 桜 サクラ 莉子 リコ
心春 コハル 杏 アン 楓 カエデ 優花 ユウカ 千尋 チヒロ 瞳 ヒトミ 由香 ユカ 恵理 エリ 理恵 リエ
友美 トモミ 明子 アキコ 順子 ジュンコ 静香 シズカ 富美子 フミコ 真紀 マキ 広美 ヒロミ
国子 クニコ 春子 ハルコ 夏美 ナツミ 千夏 チナツ 奈々 ナナ 純子 ジュンコ 光子 ミツコ
弘子 ヒロコ 悦子 エツコ 孝子 タカコ 美香 ミカ 朋美 トモミ 彩花 アヤカ 美月 ミツキ 結愛 ユア
陽葵 ヒマリ 澄子 スミコ 敏子 トシコ 清美 キヨミ 恵 メグミ 瀬奈 セナ 小百合 サユリ 千恵 チエ
"""


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    words = text.split()
    return tuple(zip(words[::2], words[1::2], strict=True))


EXTRA_FAMILY_NAMES: Final = _pairs(_FAMILY)
"""(kanji, katakana reading) surnames beyond Faker's list."""

EXTRA_MALE_NAMES: Final = _pairs(_MALE)
"""(kanji, katakana reading) male given names beyond Faker's list."""

EXTRA_FEMALE_NAMES: Final = _pairs(_FEMALE)
"""(kanji, katakana reading) female given names beyond Faker's list."""

# Real prefecture/municipality pairs (Faker's address provider combines them at random).
# Includes names with ケ/ヶ and 龍 so that addresses exercise those folds too.
_MUNICIPALITIES: Final = """
東京都 千代田区 新宿区 品川区 大田区 世田谷区 練馬区 八王子市 町田市
大阪府 大阪市北区 大阪市中央区 大阪市淀川区 堺市堺区 豊中市 吹田市
神奈川県 横浜市港北区 横浜市中区 川崎市中原区 相模原市中央区 藤沢市
愛知県 名古屋市中区 名古屋市千種区 豊田市 岡崎市
北海道 札幌市中央区 旭川市 函館市
福岡県 福岡市博多区 北九州市小倉北区 久留米市
埼玉県 さいたま市浦和区 川口市 所沢市 鶴ヶ島市
千葉県 千葉市中央区 船橋市 柏市 浦安市 鎌ケ谷市
兵庫県 神戸市中央区 姫路市 西宮市
京都府 京都市中京区 宇治市
宮城県 仙台市青葉区
広島県 広島市中区 福山市
静岡県 静岡市葵区 浜松市中央区
新潟県 新潟市中央区
岡山県 岡山市北区
熊本県 熊本市中央区
鹿児島県 鹿児島市
沖縄県 那覇市
長野県 長野市 松本市
石川県 金沢市
茨城県 水戸市 つくば市 龍ケ崎市
"""


def _municipalities(text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for line in text.strip().splitlines():
        prefecture, *cities = line.split()
        out.extend((prefecture, city) for city in cities)
    return tuple(out)


MUNICIPALITIES: Final = _municipalities(_MUNICIPALITIES)
"""(prefecture, municipality) pairs that exist."""

VARIANT_FORMS: Final[dict[str, tuple[str, ...]]] = {
    "高": ("髙",),
    "崎": ("﨑", "嵜"),
    "斎": ("齋", "齊"),
    "辺": ("邊", "邉"),
    "沢": ("澤",),
    "浜": ("濱",),
    "国": ("國",),
    "広": ("廣",),
    "桜": ("櫻",),
    "島": ("嶋",),
    "富": ("冨",),
    "真": ("眞",),
    "恵": ("惠",),
    "徳": ("德",),
    "瀬": ("瀨",),
    "蔵": ("藏",),
    "実": ("實",),
    "竜": ("龍",),
}
"""Standard kanji → variant forms people and agency systems write for it (異体字)."""
